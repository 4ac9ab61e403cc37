# timenode — build, run and test. `make run` and `make test` are the two
# commands the README promises work on a fresh Debian machine with Go.

GO        ?= go
BIN       := bin
STATE     ?= .state/sim
PKGS      := ./...
GOFLAGS_TEST ?= -count=1 -timeout 30m

.PHONY: all build run test vet fmt-check mod-check cross bench bench-timing bench-ntp bench-roughtime bench-gnss test-confinement \
	qemu-clock-test test-future abi-test fuzz-gnss fuzz-ntp fuzz-apparmor golden-timing bench-serve image image-test image-arm64 clean \
	redteam sidecar-image bench-integrity k8s-test update-bundle

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/timenoded ./cmd/timenodectl

# Simulation mode: simulated receiver, PPS and oscillator; development keys
# and certificates made on the fly in $(STATE). Ctrl-C stops it.
# RUN_FLAGS adds daemon flags, e.g. RUN_FLAGS=--max-holdover-bound=10us to
# watch a PPS cut take the node out of service in seconds (README).
RUN_FLAGS ?=
run: build
	@mkdir -p $(STATE)
	@echo "timenoded --sim: state in $(STATE); HTTPS on 127.0.0.1:5443, HTTP on 127.0.0.1:5000, metrics on 127.0.0.1:9090, NTP on udp 127.0.0.1:11123, Roughtime on udp 127.0.0.1:2002"
	@echo "status: bin/timenodectl status http://127.0.0.1:5000 (--watch 2s); faults: curl -X POST 'http://127.0.0.1:5000/sim/pps?on=false' (README: Breaking the simulated hardware)"
	$(BIN)/timenoded --sim --state-dir $(STATE) --https 127.0.0.1:5443 --metrics 127.0.0.1:9090 --listen 127.0.0.1:5000 --roughtime 127.0.0.1:2002 --sim-witnesses 3 $(RUN_FLAGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The appliance may be an arm64 SBC: prove every package (and the PPS and
# GPIO tests) builds there.
cross:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./hw/pps/... ./hw/gpio/...

# The PPS ioctl numbers and struct layouts against <linux/pps.h> (cgo).
abi-test:
	CGO_ENABLED=1 $(GO) test -count=1 ./hw/pps/internal/ppsabi/...

# The kernel clock adapter steering a throwaway qemu guest's clock (also
# run by `go test ./...` when CI=true).
qemu-clock-test:
	hw/clock/qemutest/run.sh

# Every package's tests in qemu guests whose clocks start on 2031-06-01 and
# 2036-02-08 (NTP era 1): no test may depend on today's date.
test-future:
	hw/clock/qemutest/fetch-kernel.sh hw/clock/qemutest/.cache
	TIMENODE_FUTURE_TEST=1 $(GO) test -count=1 -timeout 60m -v -run '^TestFutureDates$$' ./hw/clock/futuretest

test: fmt-check vet cross mod-check k8s-test
	$(GO) test $(GOFLAGS_TEST) $(PKGS)

# image/k8s is a module of its own (Helm, Kubernetes, go-containerregistry
# stay out of go.mod), so ./... above does not reach it: its vet, tidiness
# and tests (the sidecar image, the chart, the manifests) run here.
k8s-test:
	cd image/k8s && $(GO) vet ./... && \
		{ $(GO) mod tidy -diff || { echo "image/k8s: go.mod or go.sum is not tidy"; exit 1; }; } && \
		$(GO) test $(GOFLAGS_TEST) ./...

# go.mod lists what the code imports, direct and indirect apart.
mod-check:
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }

test-confinement:
	$(GO) test -count=1 -v ./systemd/ ./apparmor/ ./image/nftables/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./signer/... ./timing/... ./hw/gnss/ ./netsvc/ntp/

# The servo against the PI baseline and an oracle on simulated hours;
# rewrites the table in docs/TIMING.md.
bench-timing:
	$(GO) run ./timing/simbench/cmd/simbench -doc docs/TIMING.md

# GNSS integrity (issue 20): false alarms over 24 simulated hours per
# clean scenario and over every capture in testdata/nmea, and every
# modelled attack's detection time and largest true error before it;
# rewrites the tables in docs/INTEGRITY.md.
bench-integrity:
	$(GO) run ./timing/integrity/cmd/integritybench -doc docs/INTEGRITY.md

golden-timing:
	$(GO) generate ./timing/servo

bench-gnss:
	$(GO) test -run '^$$' -bench . -benchmem ./hw/gnss

# NTP and NTS serving: our server against a chronyd -x the bench starts
# itself, both pinned to CPU 0 and the load generator to CPU 1, in four load
# modes (batch, sockets, mix, nts); replies/s and replies per server
# CPU-second. About 70 s. -min-ratio 1.5 exits 3 when a plain NTP mode is
# below 1.5x chronyd per CPU-second (see docs/SERVING.md).
NTPBENCH_FLAGS ?= -rounds 2 -warmup 1s -duration 3s -min-ratio 1.5
bench-ntp:
	$(GO) build -o $(BIN)/ ./cmd/ntpbench
	$(BIN)/ntpbench $(NTPBENCH_FLAGS)

# Roughtime serving (issue 19): our server with one signature per reply
# (BatchSize 1) and batched (-batch 64) against Cloudflare's testserver,
# built from ../shared/interop/roughtime (left out, with the reason
# printed, when it cannot be built); all pinned to CPU 0, the load
# generator to CPU 1; replies/s, replies per server CPU-second and round
# trips, every 64th reply verified. About 35 s (see docs/SERVING.md).
ROUGHTIMEBENCH_FLAGS ?= -rounds 2 -warmup 1s -duration 4s
bench-roughtime:
	$(GO) build -o $(BIN)/ ./cmd/roughtimebench
	$(BIN)/roughtimebench $(ROUGHTIMEBENCH_FLAGS)

# HTTPS serving speed: nonce-bound and cached-snapshot attestations against
# a plain TLS "hello" handler (the ceiling), one mTLS keep-alive load
# generator on loopback; -min-ratio 0.8 makes it fail below the target.
SERVEBENCH_FLAGS ?= -conns 16,64 -rounds 2 -warmup 1s -duration 3s
bench-serve:
	$(GO) build -o $(BIN)/ ./cmd/servebench ./cmd/timenoded
	$(BIN)/servebench -daemon $(BIN)/timenoded $(SERVEBENCH_FLAGS)

# The red-team suite (docs/SECURITY.md): replays issue 16's attacks on the
# network layer against a `timenoded --sim` on loopback, each in its own
# process for 15 s, and fails if a legitimate mTLS client's success rate
# drops below 99 % or its p99 rises above 10x the unloaded p99 (and more:
# see the doc). About 2 minutes; it needs the machine to itself, so it is
# a step of its own, not part of `make test`.
REDTEAM_FLAGS ?=
redteam:
	$(GO) build -o $(BIN)/ ./cmd/timenoded ./cmd/internal/redteam
	$(BIN)/redteam -daemon $(BIN)/timenoded $(REDTEAM_FLAGS)

# The flashable appliance image (Debian bookworm via debootstrap, read-only
# root, state partition, systemd-boot) and its boot test as shipped: the
# image booted through UEFI under qemu TCG with nothing swapped in,
# provisioned over SSH from a TNPROV medium, the receiver on a real UART
# and the pulse on a real kernel PPS device, then served, verified,
# rotated under load and rebooted (image/boottest/shipped).
IMAGE_DIR ?= build/image
image:
	image/build.sh $(IMAGE_DIR)
	image/check.sh $(IMAGE_DIR) amd64

# A signed RAUC update bundle of the image just built (image/bundle.sh):
# UPDATE_CERT/UPDATE_KEY/UPDATE_CA sign it, else the development update CA
# in build/update-keys (which `make image` then trusts). `make image` takes
# the same three: it signs slot a's dm-verity root hash.
update-bundle:
	image/bundle.sh $(IMAGE_DIR)

image-test: image
	TIMENODE_IMAGE_TEST=1 TIMENODE_IMAGE_DIR=$(abspath $(IMAGE_DIR)) $(GO) test -count=1 -timeout 60m -v -run '^TestShippedImage$$' ./image/boottest/shipped

# The same image for arm64 UEFI boards: debootstrap --foreign, the second
# stage and apt under qemu-user-static; checked without booting (file
# systems read with debugfs/mtools, the image's own daemon run under
# qemu-user), then booted as flashed through AAVMF under qemu TCG.
IMAGE_ARM64_DIR ?= build/image-arm64
image-arm64:
	ARCH=arm64 image/build.sh $(IMAGE_ARM64_DIR)
	image/check.sh $(IMAGE_ARM64_DIR) arm64
	image/boottest/uefi.sh $(IMAGE_ARM64_DIR) arm64

# The refresh sidecar's OCI image for clients in Kubernetes, built without
# a container engine (image/k8s, a module of its own): an OCI layout and a
# tarball for docker load, crane push or skopeo copy.
SIDECAR_IMAGE_DIR ?= build/sidecar-image
sidecar-image:
	cd image/k8s && $(GO) run ./cmd/sidecar-image -src ../.. -layout $(abspath $(SIDECAR_IMAGE_DIR))/oci -tar $(abspath $(SIDECAR_IMAGE_DIR))/timenode-refresh.tar

FUZZTIME ?= 5m
fuzz-gnss:
	$(GO) test -run '^$$' -fuzz FuzzFramerParse -fuzztime $(FUZZTIME) -parallel 2 ./hw/gnss

fuzz-ntp:
	$(GO) test -run '^$$' -fuzz FuzzParseRequest -fuzztime $(FUZZTIME) -parallel 2 ./netsvc/ntp

fuzz-apparmor:
	$(GO) test -run '^$$' -fuzz FuzzParseLine -fuzztime $(FUZZTIME) -parallel 2 ./netsvc/apparmorlog

clean:
	rm -rf $(BIN) build .state
