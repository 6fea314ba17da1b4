package bidi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// offline is a URL that reaches nothing: the discard port on loopback.
// Services whose URL cannot simply be empty point here.
const offline = "http://127.0.0.1:9/"

// DefaultPrefs are the preferences Start writes into the fresh profile's
// user.js. The machines that run the tests have no internet, and a test
// browser must not talk to anything but the server under test anyway: every
// feature that reaches the network by itself is off (updates, telemetry and
// crash reports, captive-portal and connectivity checks, Safe Browsing,
// Normandy/Nimbus experiments, Remote Settings, push, add-on and plugin
// updates, search and region look-ups, DNS over HTTPS, prefetching and
// speculative connections), as are first-run pages, session restore and
// default-browser prompts. Firefox also applies its own "recommended
// preferences" for automation when the remote agent is on
// (remote.prefs.recommended); these come on top.
var DefaultPrefs = map[string]any{
	// The remote agent: WebDriver BiDi only (the pref is gone since
	// Firefox 141, where BiDi is the only protocol; older versions need it),
	// loopback only, Firefox's recommended automation preferences applied.
	"remote.active-protocols":  1,
	"remote.force-local":       true,
	"remote.prefs.recommended": true,

	// Updates of the browser, add-ons, system add-ons, plugins, search engines.
	"app.update.auto":                       false,
	"app.update.checkInstallTime":           false,
	"app.update.disabledForTesting":         true,
	"app.update.service.enabled":            false,
	"app.update.staging.enabled":            false,
	"app.update.url":                        "",
	"extensions.update.enabled":             false,
	"extensions.update.autoUpdateDefault":   false,
	"extensions.getAddons.cache.enabled":    false,
	"extensions.blocklist.enabled":          false,
	"extensions.systemAddon.update.enabled": false,
	"extensions.systemAddon.update.url":     "",
	"extensions.installDistroAddons":        false,
	"extensions.pocket.enabled":             false,
	"media.gmp-manager.updateEnabled":       false,
	"media.gmp-manager.url":                 "",
	"media.gmp-gmpopenh264.enabled":         false,
	"media.gmp-widevinecdm.enabled":         false,
	"browser.search.update":                 false,
	"browser.search.geoip.url":              "",
	"browser.region.network.url":            "",
	"browser.region.update.enabled":         false,

	// Telemetry, health report, crash reports, studies and experiments.
	"datareporting.policy.dataSubmissionEnabled":                  false,
	"datareporting.policy.dataSubmissionPolicyBypassNotification": true,
	"datareporting.healthreport.uploadEnabled":                    false,
	"datareporting.usage.uploadEnabled":                           false,
	"toolkit.telemetry.enabled":                                   false,
	"toolkit.telemetry.unified":                                   false,
	"toolkit.telemetry.archive.enabled":                           false,
	"toolkit.telemetry.server":                                    offline,
	"toolkit.telemetry.reportingpolicy.firstRun":                  false,
	"toolkit.telemetry.shutdownPingSender.enabled":                false,
	"toolkit.telemetry.newProfilePing.enabled":                    false,
	"toolkit.telemetry.firstShutdownPing.enabled":                 false,
	"toolkit.telemetry.updatePing.enabled":                        false,
	"toolkit.telemetry.bhrPing.enabled":                           false,
	"toolkit.crashreporter.enabled":                               false,
	"browser.crashReports.unsubmittedCheck.autoSubmit2":           false,
	"breakpad.reportURL":                                          "",
	"browser.newtabpage.activity-stream.feeds.telemetry":          false,
	"browser.newtabpage.activity-stream.telemetry":                false,
	"browser.ping-centre.telemetry":                               false,
	"app.normandy.enabled":                                        false,
	"app.normandy.api_url":                                        "",
	"app.shield.optoutstudies.enabled":                            false,
	"messaging-system.rsexperimentloader.enabled":                 false,
	"nimbus.rollouts.enabled":                                     false,
	"browser.discovery.enabled":                                   false,

	// Remote Settings (blocklists, experiments, translations' models, …) and push.
	"services.settings.server":    "data:,#remote-settings-dummy/v1", // as in Firefox's own automation
	"dom.push.enabled":            false,
	"dom.push.connection.enabled": false,
	"dom.push.serverURL":          "",

	// Captive portal and connectivity checks, DNS over HTTPS, proxies.
	"network.captive-portal-service.enabled": false,
	"captivedetect.canonicalURL":             "",
	"network.connectivity-service.enabled":   false,
	"network.trr.mode":                       5, // DNS over HTTPS off by choice
	"doh-rollout.disable-heuristics":         true,
	"network.proxy.type":                     0, // direct, whatever the environment says
	// Every host name resolves to 127.0.0.1 without asking DNS (Firefox's
	// own test harness does the same): tests use loopback addresses only.
	"network.dns.native-is-localhost": true,

	// Safe Browsing and tracking-protection list downloads.
	"browser.safebrowsing.malware.enabled":             false,
	"browser.safebrowsing.phishing.enabled":            false,
	"browser.safebrowsing.blockedURIs.enabled":         false,
	"browser.safebrowsing.downloads.enabled":           false,
	"browser.safebrowsing.downloads.remote.enabled":    false,
	"browser.safebrowsing.update.enabled":              false,
	"browser.safebrowsing.provider.google.updateURL":   "",
	"browser.safebrowsing.provider.google.gethashURL":  "",
	"browser.safebrowsing.provider.google4.updateURL":  "",
	"browser.safebrowsing.provider.google4.gethashURL": "",
	"browser.safebrowsing.provider.mozilla.updateURL":  "",
	"browser.safebrowsing.provider.mozilla.gethashURL": "",
	"privacy.trackingprotection.enabled":               false,
	"browser.contentblocking.database.enabled":         false,
	"urlclassifier.updateinterval":                     86400 * 365,

	// Prefetching and speculative connections.
	"network.dns.disablePrefetch":                                true,
	"network.prefetch-next":                                      false,
	"network.predictor.enabled":                                  false,
	"network.http.speculative-parallel-limit":                    0,
	"browser.urlbar.speculativeConnect.enabled":                  false,
	"browser.places.speculativeConnect.enabled":                  false,
	"browser.urlbar.suggest.quicksuggest.sponsored":              false,
	"browser.urlbar.quicksuggest.enabled":                        false,
	"browser.topsites.contile.enabled":                           false,
	"browser.newtabpage.enabled":                                 false,
	"browser.newtabpage.activity-stream.feeds.system.topstories": false,

	// Backups, accounts, location, translations, machine learning.
	"browser.backup.enabled":           false,
	"browser.backup.scheduled.enabled": false,
	"identity.fxaccounts.enabled":      false,
	"geo.enabled":                      false,
	"geo.provider.network.url":         "",
	"browser.translations.enable":      false,
	"browser.ml.enable":                false,

	// First run, start page, prompts, session restore.
	"browser.shell.checkDefaultBrowser":        false,
	"browser.aboutwelcome.enabled":             false,
	"browser.startup.page":                     0,
	"browser.startup.homepage":                 "about:blank",
	"browser.startup.homepage_override.mstone": "ignore",
	"startup.homepage_welcome_url":             "about:blank",
	"startup.homepage_welcome_url.additional":  "",
	"startup.homepage_override_url":            "",
	"browser.rights.3.shown":                   true,
	"browser.uitour.enabled":                   false,
	"browser.tabs.warnOnClose":                 false,
	"browser.warnOnQuit":                       false,
	"browser.sessionstore.resume_from_crash":   false,
	"toolkit.startup.max_resumed_crashes":      -1,
	"dom.disable_open_during_load":             false,
	"dom.max_script_run_time":                  0,
	"browser.download.panel.shown":             true,
}

// writeUserJS writes user.js into the profile dir: DefaultPrefs overridden
// by extra.
func writeUserJS(dir string, extra map[string]any) error {
	prefs := map[string]any{}
	for k, v := range DefaultPrefs {
		prefs[k] = v
	}
	for k, v := range extra {
		prefs[k] = v
	}
	keys := make([]string, 0, len(prefs))
	for k := range prefs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("// Written by grainchat's cmd/internal/bidi for a test browser: no network but the server under test.\n")
	for _, k := range keys {
		v := prefs[k]
		switch v.(type) {
		case bool, string, int, int64:
		default:
			return fmt.Errorf("preference %s: %T is not a bool, string or integer", k, v)
		}
		name, _ := json.Marshal(k)
		val, _ := json.Marshal(v)
		fmt.Fprintf(&b, "user_pref(%s, %s);\n", name, val)
	}
	return os.WriteFile(filepath.Join(dir, "user.js"), []byte(b.String()), 0o644)
}
