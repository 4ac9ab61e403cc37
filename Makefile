# timenode — build, run and test. `make run` and `make test` are the two
# commands the README promises work on a fresh Debian machine with Go.

GO        ?= go
BIN       := bin
STATE     ?= .state/sim
PKGS      := ./...
GOFLAGS_TEST ?= -count=1 -timeout 30m

.PHONY: all build run test vet fmt-check cross bench bench-timing test-confinement clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/timenoded ./cmd/timenodectl

# Simulation mode: simulated receiver, PPS and oscillator; development keys
# and certificates made on the fly in $(STATE). Ctrl-C stops it.
run: build
	@mkdir -p $(STATE)
	@echo "timenoded --sim: state in $(STATE); HTTPS on 127.0.0.1:5443, HTTP on 127.0.0.1:5000, metrics on 127.0.0.1:9090"
	$(BIN)/timenoded --sim --state-dir $(STATE) --https 127.0.0.1:5443 --metrics 127.0.0.1:9090 --listen 127.0.0.1:5000

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The appliance may be an arm64 SBC: prove every package builds there.
cross:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...

test: fmt-check vet cross
	$(GO) test $(GOFLAGS_TEST) $(PKGS)

test-confinement:
	$(GO) test -count=1 -v ./systemd/ ./apparmor/ ./image/nftables/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./signer/ ./timing/...

clean:
	rm -rf $(BIN) build .state
