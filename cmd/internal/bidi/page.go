package bidi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
)

// Keys for Page.Press: the WebDriver key codes of a few special keys.
const (
	KeyEnter     = "\uE007"
	KeyBackspace = "\uE003"
	KeyTab       = "\uE004"
	KeyEscape    = "\uE00C"
	KeyShift     = "\uE008"
)

// Page is a top-level browsing context (a tab or window).
type Page struct {
	b *Browser
	// ID is the browsing context's id.
	ID string
	// UserContext is the user context the page belongs to ("" = default).
	UserContext string
}

// Navigate loads url and waits until the document is complete (its load
// event).
func (p *Page) Navigate(ctx context.Context, url string) error {
	return p.b.conn.Call(ctx, "browsingContext.navigate",
		map[string]any{"context": p.ID, "url": url, "wait": "complete"}, nil)
}

// Reload reloads the page and waits until the document is complete.
func (p *Page) Reload(ctx context.Context) error {
	return p.b.conn.Call(ctx, "browsingContext.reload",
		map[string]any{"context": p.ID, "wait": "complete"}, nil)
}

// Activate brings the page to the foreground of its window and focuses it.
func (p *Page) Activate(ctx context.Context) error {
	return p.b.conn.Call(ctx, "browsingContext.activate", map[string]any{"context": p.ID}, nil)
}

// Frame is a browsing context inside a page (an iframe), as
// browsingContext.getTree reports it.
type Frame struct {
	ID  string
	URL string
}

// Frames lists the page's frames, depth first (not the page itself).
func (p *Page) Frames(ctx context.Context) ([]Frame, error) {
	type node struct {
		Context  string `json:"context"`
		URL      string `json:"url"`
		Children []json.RawMessage
	}
	var res struct {
		Contexts []node `json:"contexts"`
	}
	if err := p.b.conn.Call(ctx, "browsingContext.getTree", map[string]any{"root": p.ID}, &res); err != nil {
		return nil, err
	}
	var out []Frame
	var walk func(raws []json.RawMessage) error
	walk = func(raws []json.RawMessage) error {
		for _, raw := range raws {
			var n node
			if err := json.Unmarshal(raw, &n); err != nil {
				return fmt.Errorf("bidi: getTree: %w", err)
			}
			out = append(out, Frame{ID: n.Context, URL: n.URL})
			if err := walk(n.Children); err != nil {
				return err
			}
		}
		return nil
	}
	for _, top := range res.Contexts {
		if err := walk(top.Children); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// InFrame returns the frame id of p as a Page: its scripts run in the
// frame's document, its clicks and keys go to the frame.
func (p *Page) InFrame(id string) *Page {
	return &Page{b: p.b, ID: id, UserContext: p.UserContext}
}

// Close closes the page.
func (p *Page) Close(ctx context.Context) error {
	return p.b.conn.Call(ctx, "browsingContext.close", map[string]any{"context": p.ID}, nil)
}

// SetViewport sets the size of the page's viewport in CSS pixels and its
// device pixel ratio (0 keeps the browser's own): 390×844 at 2 is a phone.
func (p *Page) SetViewport(ctx context.Context, width, height int, devicePixelRatio float64) error {
	params := map[string]any{
		"context":  p.ID,
		"viewport": map[string]any{"width": width, "height": height},
	}
	if devicePixelRatio > 0 {
		params["devicePixelRatio"] = devicePixelRatio
	}
	return p.b.conn.Call(ctx, "browsingContext.setViewport", params, nil)
}

// Screenshot returns a PNG of the page's viewport.
func (p *Page) Screenshot(ctx context.Context) ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := p.b.conn.Call(ctx, "browsingContext.captureScreenshot",
		map[string]any{"context": p.ID, "origin": "viewport"}, &res); err != nil {
		return nil, err
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return nil, fmt.Errorf("bidi: screenshot: %w", err)
	}
	return png, nil
}

// RemoteValue is a value of the page as BiDi serializes it: Type is
// "undefined", "null", "string", "number", "boolean", "bigint", "array",
// "object", "node", …; Value is its JSON (for arrays and objects a list of
// RemoteValues or of [key, RemoteValue] pairs); SharedID names a DOM node.
type RemoteValue struct {
	Type     string          `json:"type"`
	Value    json.RawMessage `json:"value,omitempty"`
	SharedID string          `json:"sharedId,omitempty"`
	Handle   string          `json:"handle,omitempty"`
}

// String returns a string value's text, or the value's JSON for other types.
func (v RemoteValue) String() string {
	if v.Type == "string" {
		var s string
		_ = json.Unmarshal(v.Value, &s)
		return s
	}
	if len(v.Value) == 0 {
		return v.Type
	}
	return string(v.Value)
}

// ScriptError is an exception thrown by evaluated script.
type ScriptError struct {
	Text       string `json:"text"`
	LineNumber int    `json:"lineNumber"`
	Column     int    `json:"columnNumber"`
}

func (e *ScriptError) Error() string {
	return fmt.Sprintf("script threw (line %d:%d): %s", e.LineNumber, e.Column, e.Text)
}

// scriptResult is the result of script.evaluate and script.callFunction.
type scriptResult struct {
	Type             string       `json:"type"` // "success" or "exception"
	Result           RemoteValue  `json:"result"`
	ExceptionDetails *ScriptError `json:"exceptionDetails"`
}

func (r scriptResult) value() (RemoteValue, error) {
	if r.Type == "exception" {
		if r.ExceptionDetails == nil {
			return RemoteValue{}, &ScriptError{Text: "an exception without details"}
		}
		return RemoteValue{}, r.ExceptionDetails
	}
	return r.Result, nil
}

// Evaluate runs expr as a script of the page (its globals, const and let
// declarations persist like a console's), waits for the promise it returns
// if any, and returns its value. An exception is a *ScriptError; a page that
// is navigating away answers an *Error (see ErrorCode).
func (p *Page) Evaluate(ctx context.Context, expr string) (RemoteValue, error) {
	var res scriptResult
	err := p.b.conn.Call(ctx, "script.evaluate", map[string]any{
		"expression":      expr,
		"target":          map[string]any{"context": p.ID},
		"awaitPromise":    true,
		"resultOwnership": "none",
	}, &res)
	if err != nil {
		return RemoteValue{}, err
	}
	return res.value()
}

// EvaluateJSON evaluates the JavaScript expression expr (awaiting it if it
// is a promise), converts its value with JSON.stringify in the page and
// decodes that into out. undefined leaves out unchanged.
func (p *Page) EvaluateJSON(ctx context.Context, expr string, out any) error {
	v, err := p.Evaluate(ctx, "(async () => JSON.stringify(await (\n"+expr+"\n)))()")
	if err != nil {
		return err
	}
	switch v.Type {
	case "undefined":
		return nil
	case "string":
		if err := json.Unmarshal([]byte(v.String()), out); err != nil {
			return fmt.Errorf("bidi: decode %.200s: %w", v.String(), err)
		}
		return nil
	default:
		return fmt.Errorf("bidi: JSON.stringify returned a %s", v.Type)
	}
}

// CallFunction calls the JavaScript function fn (its source, e.g.
// "(sel) => document.querySelector(sel)") in the page with args (strings,
// numbers, booleans, nil, or RemoteValues of nodes the page returned), waits
// for the promise it returns if any, and returns its value.
func (p *Page) CallFunction(ctx context.Context, fn string, args ...any) (RemoteValue, error) {
	local := make([]any, 0, len(args))
	for i, a := range args {
		v, err := localValue(a)
		if err != nil {
			return RemoteValue{}, fmt.Errorf("bidi: argument %d: %w", i, err)
		}
		local = append(local, v)
	}
	var res scriptResult
	err := p.b.conn.Call(ctx, "script.callFunction", map[string]any{
		"functionDeclaration": fn,
		"arguments":           local,
		"target":              map[string]any{"context": p.ID},
		"awaitPromise":        true,
		"resultOwnership":     "none",
	}, &res)
	if err != nil {
		return RemoteValue{}, err
	}
	return res.value()
}

// localValue serializes a Go value as a BiDi LocalValue.
func localValue(a any) (any, error) {
	switch v := a.(type) {
	case nil:
		return map[string]any{"type": "null"}, nil
	case string:
		return map[string]any{"type": "string", "value": v}, nil
	case bool:
		return map[string]any{"type": "boolean", "value": v}, nil
	case int:
		return map[string]any{"type": "number", "value": v}, nil
	case int64:
		return map[string]any{"type": "number", "value": v}, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v is not a finite number", v)
		}
		return map[string]any{"type": "number", "value": v}, nil
	case RemoteValue:
		if v.SharedID == "" {
			return nil, fmt.Errorf("a %s RemoteValue without sharedId cannot be passed back", v.Type)
		}
		return map[string]any{"sharedId": v.SharedID}, nil
	default:
		return nil, fmt.Errorf("%T cannot be passed to the page", a)
	}
}

// Click scrolls the first element matching the CSS selector into view and
// clicks its centre with the mouse (pointer actions: move, down, up), as a
// person would.
func (p *Page) Click(ctx context.Context, selector string) error {
	el, err := p.CallFunction(ctx, `(sel) => {
		const e = document.querySelector(sel);
		if (!e) throw new Error('no element matches ' + sel);
		e.scrollIntoView({block: 'center', inline: 'center'});
		return e;
	}`, selector)
	if err != nil {
		return fmt.Errorf("click %s: %w", selector, err)
	}
	if el.SharedID == "" {
		return fmt.Errorf("click %s: the page returned a %s, not an element", selector, el.Type)
	}
	return p.performActions(ctx, []any{map[string]any{
		"type":       "pointer",
		"id":         "mouse",
		"parameters": map[string]any{"pointerType": "mouse"},
		"actions": []any{
			map[string]any{"type": "pointerMove", "x": 0, "y": 0, "origin": map[string]any{
				"type": "element", "element": map[string]any{"sharedId": el.SharedID}}},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}})
}

// Type types text with the keyboard (a key down and up per character) into
// whatever has the focus.
func (p *Page) Type(ctx context.Context, text string) error {
	var actions []any
	for _, r := range text {
		actions = append(actions,
			map[string]any{"type": "keyDown", "value": string(r)},
			map[string]any{"type": "keyUp", "value": string(r)})
	}
	return p.keys(ctx, actions)
}

// Press presses and releases one key (a character or one of the Key
// constants), optionally while holding modifiers (e.g. KeyShift).
func (p *Page) Press(ctx context.Context, key string, modifiers ...string) error {
	var actions []any
	for _, m := range modifiers {
		actions = append(actions, map[string]any{"type": "keyDown", "value": m})
	}
	actions = append(actions,
		map[string]any{"type": "keyDown", "value": key},
		map[string]any{"type": "keyUp", "value": key})
	for i := len(modifiers) - 1; i >= 0; i-- {
		actions = append(actions, map[string]any{"type": "keyUp", "value": modifiers[i]})
	}
	return p.keys(ctx, actions)
}

func (p *Page) keys(ctx context.Context, actions []any) error {
	if len(actions) == 0 {
		return nil
	}
	return p.performActions(ctx, []any{map[string]any{"type": "key", "id": "keyboard", "actions": actions}})
}

func (p *Page) performActions(ctx context.Context, sources []any) error {
	return p.b.conn.Call(ctx, "input.performActions", map[string]any{"context": p.ID, "actions": sources}, nil)
}

// LogEntry is a log.entryAdded event: Type "console" (console.log and
// friends; Method is "log", "error", …) or "javascript" (an uncaught
// error); Level is "debug", "info", "warn" or "error".
type LogEntry struct {
	Type   string        `json:"type"`
	Level  string        `json:"level"`
	Text   string        `json:"text"`
	Method string        `json:"method"`
	Args   []RemoteValue `json:"args"`
	Source struct {
		Context string `json:"context"`
	} `json:"source"`
}

// DecodeLogEntry decodes a log.entryAdded event.
func DecodeLogEntry(ev Event) (LogEntry, error) {
	var e LogEntry
	if ev.Method != "log.entryAdded" {
		return e, fmt.Errorf("bidi: %s is not log.entryAdded", ev.Method)
	}
	if err := json.Unmarshal(ev.Params, &e); err != nil {
		return e, fmt.Errorf("bidi: decode log entry: %w", err)
	}
	return e, nil
}
