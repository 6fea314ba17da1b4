// This file holds the API's canned replies (list, create, change, delete)
// and the staff list: the same store calls, rules and error codes as the
// WebSocket's canned, canned_save, canned_delete and staff frames.

package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// listCanned: GET /api/v1/canned_replies
func (a *API) listCanned(req *request) (int, any, error) {
	list, err := a.cfg.Store.CannedReplies(req.ctx)
	if err != nil {
		return 0, nil, fromCanned(err)
	}
	out := make([]wire.CannedReplyJSON, len(list))
	for i, r := range list {
		out[i] = actors.CannedReplyToWire(r).ToJSON()
	}
	return http.StatusOK, map[string]any{"canned_replies": out}, nil
}

// createCanned: POST /api/v1/canned_replies with {"name", "body"}.
func (a *API) createCanned(req *request) (int, any, error) {
	fields, err := cannedFields(req.r)
	if err != nil {
		return 0, nil, err
	}
	return a.saveCanned(req, 0, fields, http.StatusCreated)
}

// patchCanned: PATCH /api/v1/canned_replies/{id} with any of {"name",
// "body"}; the other keeps its stored value (read just before: a
// concurrent change of it is overwritten, as by a full save).
func (a *API) patchCanned(req *request) (int, any, error) {
	id, err := cannedID(req.r)
	if err != nil {
		return 0, nil, err
	}
	fields, err := cannedFields(req.r)
	if err != nil {
		return 0, nil, err
	}
	if len(fields) == 0 {
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "nothing to change: send name and/or body")
	}
	cur, err := a.cannedReply(req, id)
	if err != nil {
		return 0, nil, err
	}
	if _, ok := fields["name"]; !ok {
		fields["name"], _ = json.Marshal(cur.Name)
	}
	if _, ok := fields["body"]; !ok {
		fields["body"], _ = json.Marshal(cur.Body)
	}
	return a.saveCanned(req, id, fields, http.StatusOK)
}

// deleteCanned: DELETE /api/v1/canned_replies/{id}
func (a *API) deleteCanned(req *request) (int, any, error) {
	id, err := cannedID(req.r)
	if err != nil {
		return 0, nil, err
	}
	if err := a.cfg.Store.DeleteCannedReply(req.ctx, id); err != nil {
		return 0, nil, fromCanned(err)
	}
	return http.StatusNoContent, nil, nil
}

// listStaff: GET /api/v1/staff
func (a *API) listStaff(req *request) (int, any, error) {
	staff, err := a.cfg.Store.StaffUsers(req.ctx, storage.MaxStaffUsers)
	if err != nil {
		return 0, nil, fromStorage(err)
	}
	out := make([]wire.DeskUser, len(staff))
	for i, u := range staff {
		out[i] = wire.DeskUser{ID: u.ID, ExternalID: u.ExternalID, Name: u.Name}
	}
	return http.StatusOK, map[string]any{"staff": out}, nil
}

// cannedFields reads a canned reply body: an object with name and/or body.
func cannedFields(r *http.Request) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := readBody(r, &fields); err != nil {
		return nil, err
	}
	if fields == nil {
		return nil, errorf(http.StatusBadRequest, wire.CodeInvalidJSON, "the body is not a JSON object")
	}
	for k := range fields {
		if k != "name" && k != "body" {
			return nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "unknown field "+strconv.Quote(k))
		}
	}
	return fields, nil
}

// saveCanned checks the fields exactly as the WebSocket's decoder checks a
// canned_save frame, saves the reply (id 0: a new one) and answers it with
// status.
func (a *API) saveCanned(req *request, id int64, fields map[string]json.RawMessage, status int) (int, any, error) {
	fields["type"] = json.RawMessage(`"` + wire.TypeCannedSave + `"`)
	frame, _ := json.Marshal(fields)
	in, err := a.decoder.Decode(frame)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return 0, nil, errorf(http.StatusBadRequest, we.Code, we.Message)
		}
		return 0, nil, err
	}
	r, err := a.cfg.Store.SaveCannedReply(req.ctx, storage.CannedReplyInput{
		ID: id, Name: in.Name, Body: in.Body, ActorID: req.user.ID,
	})
	if err != nil {
		return 0, nil, fromCanned(err)
	}
	return status, actors.CannedReplyToWire(r).ToJSON(), nil
}

// cannedReply reads one stored reply (from the list: at most
// storage.MaxCannedReplies).
func (a *API) cannedReply(req *request, id int64) (storage.CannedReply, error) {
	list, err := a.cfg.Store.CannedReplies(req.ctx)
	if err != nil {
		return storage.CannedReply{}, fromCanned(err)
	}
	for _, r := range list {
		if r.ID == id {
			return r, nil
		}
	}
	return storage.CannedReply{}, errorf(http.StatusNotFound, wire.CodeCannedNotFound, "no such canned reply")
}

// cannedID reads the canned reply id of the path.
func cannedID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusNotFound, wire.CodeCannedNotFound, "no such canned reply")
	}
	return id, nil
}

// fromCanned translates a store error of the canned replies (see
// actors.CannedErrorCode).
func fromCanned(err error) *apiError {
	code := actors.CannedErrorCode(err)
	status := http.StatusInternalServerError
	switch code {
	case wire.CodeCannedNotFound:
		status = http.StatusNotFound
	case wire.CodeNameTaken:
		status = http.StatusConflict
	case wire.CodeInvalidRequest:
		status = http.StatusBadRequest
	case wire.CodeUnavailable:
		status = http.StatusServiceUnavailable
	}
	return errorf(status, code, actors.CannedErrorMessage(err))
}
