# grainchat — see README.md.
GO ?= go

.PHONY: run test deps fuzz generate build vet lint

## run: start chatd in development mode (memory store, generated secret)
run:
	$(GO) run ./cmd/chatd

## test: the whole test suite, race detector on (needs PostgreSQL; see README), the network
## partition tests on their own (no browser must run meanwhile), then the two
## tests that races inside libraries keep out of -race builds (protoactor's gossip state with two
## members in one process; chromedp attaching to a cross-site iframe), the allocation counts
## (the race detector's sync.Pool drops at random), then brief fuzzing
# The tests that add network interfaces (namespaces, veth pairs, a bridge) run
# on their own: a browser running meanwhile sees the host's network change and
# fails its loads with ERR_NETWORK_CHANGED.
NETTESTS = TestPartition|TestCutAndHeal|TestProxyCutHoldsBytes
test:
	$(GO) test -race -count=1 -timeout 40m -skip '$(NETTESTS)' ./...
	$(GO) test -race -count=1 -timeout 15m -run '$(NETTESTS)' ./cmd/chatchaos/ ./cmd/internal/netlab/
	$(GO) test -count=1 -timeout 5m -run 'TestTwoMembers|TestUnknownMessageType' ./actors/
	$(GO) test -count=1 -timeout 5m -run 'TestFastPathTakesCommonTokens' ./transport/auth/
	$(GO) test -count=1 -timeout 5m -run 'TestBrowserWidgetOnAnotherSite|TestBrowserVisitorPanel|TestBrowserAnonymousWidget' ./cmd/chatd/
	$(MAKE) fuzz FUZZTIME=10s

## deps: install every service and program the tests need, from Debian's packages (as root, or
## through sudo): PostgreSQL (then at 127.0.0.1:5432, see README), etcd, Chromium, Firefox ESR,
## iproute2 (the partition tests) and git (the rolling-upgrade test).
## Go itself (>= 1.25) is not installed here. .ci/run uses this target.
DEPS = postgresql etcd-server chromium firefox-esr iproute2 git
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
deps:
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS)

FUZZTIME ?= 60s
# A new input's minimization (60 s by default) outlasting -fuzztime ends the
# run with "context deadline exceeded": keep it short.
FUZZMINIMIZETIME ?= 1s

## fuzz: run each fuzz target for FUZZTIME (the test target runs them briefly). .ci/fuzz.sh
## retries a run that Go 1.26 ends with a bare "context deadline exceeded" (golang/go#75804)
fuzz:
	bash .ci/fuzz.sh ./transport/wire/ FuzzDecode $(FUZZTIME) $(FUZZMINIMIZETIME)
	bash .ci/fuzz.sh ./transport/wire/ FuzzEncodersMatchJSON $(FUZZTIME) $(FUZZMINIMIZETIME)
	bash .ci/fuzz.sh ./transport/wire/ FuzzScanMatchesUnmarshal $(FUZZTIME) $(FUZZMINIMIZETIME)
	bash .ci/fuzz.sh ./transport/auth/ FuzzVerify $(FUZZTIME) $(FUZZMINIMIZETIME)
	bash .ci/fuzz.sh ./transport/auth/ FuzzClaims $(FUZZTIME) $(FUZZMINIMIZETIME)
	bash .ci/fuzz.sh ./transport/auth/ FuzzFastPathAgrees $(FUZZTIME) $(FUZZMINIMIZETIME)
	bash .ci/fuzz.sh ./cmd/chatbench/ FuzzFastFrameMatchesUnmarshal $(FUZZTIME) $(FUZZMINIMIZETIME)

## generate: regenerate protobuf code (needs Debian's protobuf-compiler); the Go plugin is the
## protoc-gen-go of go.mod's google.golang.org/protobuf, so the output does not depend on the machine
generate:
	$(GO) build -o .bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	protoc --plugin=protoc-gen-go=.bin/protoc-gen-go --proto_path=actors/chatpb --go_out=actors/chatpb \
		--go_opt=paths=source_relative actors/chatpb/chat.proto

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

## lint: gofmt, go vet and staticcheck (a pinned version, fetched through the module proxy); CI runs it
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint: vet
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt: not formatted: $$unformatted"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...
