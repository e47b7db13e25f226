# Particle Flasher. Two commands set everything up: `make run` and `make test`.
# Both install missing system packages first (scripts/ensure-deps.sh).

GO        ?= go
BUILD     := build
SHIM      := $(BUILD)/libusb-shim/libusb-1.0.so.0
SHIM_SRC  := flasher/sim/usbsim/shim/libusb_shim.c
SHIM_WIRE := flasher/sim/usbsim/wire
# make test has a 15-minute budget on a 2-core CI machine.
TEST_TIMEOUT ?= 14m
FUZZTIME  ?= 60s

.PHONY: all run build package race race-smoke test deps deps-test deps-windows deps-windows-smoke shim peers peer vet vet-windows unit fuzz fuzz-smoke bench bench-smoke soak gui-smoke screenshots windows windows-smoke clean

all: build

deps:
	@./scripts/ensure-deps.sh build

deps-test:
	@./scripts/ensure-deps.sh test

deps-windows:
	@./scripts/ensure-deps.sh windows

deps-windows-smoke:
	@./scripts/ensure-deps.sh windows-smoke

build: deps
	$(GO) build -o $(BUILD)/particle-flasher ./cmd/particle-flasher
	$(GO) build -o $(BUILD)/pflash ./cmd/pflash

# A desktop package (Linux: .tar.xz with the icon and a .desktop entry) made by Fyne's
# packager, run from the top so that it reads the top-level FyneApp.toml, around the
# binary `make build` made; into build/.
FYNE_TOOL ?= fyne.io/tools/cmd/fyne@v1.7.4
package: build
	@command -v fyne >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/fyne" ] || $(GO) install $(FYNE_TOOL)
	rm -f "Particle Flasher.tar.xz"
	@# fyne package adds one to Details.Build and rewrites FyneApp.toml each time; the
	@# build number is set by hand for a release, so the file is put back as it was.
	cp FyneApp.toml $(BUILD)/FyneApp.toml.orig
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" fyne package --os linux --exe $(BUILD)/particle-flasher; \
		rc=$$?; cp $(BUILD)/FyneApp.toml.orig FyneApp.toml; exit $$rc
	mkdir -p $(BUILD) && mv "Particle Flasher.tar.xz" $(BUILD)/particle-flasher-linux.tar.xz
	@echo "$(BUILD)/particle-flasher-linux.tar.xz"

# Windows (x86-64), cross-built here: the app with Debian's mingw-w64 (Fyne's OpenGL and
# GLFW are C), pflash in pure Go. Every Windows build and vet uses the one flag set
# WIN_GOFLAGS, so go-gl's C (5-8 minutes cold on 2 cores) is compiled once and then comes
# from the build cache; -ldflags only change the link. The app carries the icon, version
# information and manifest from FyneApp.toml (internal/fyneapp) and runs as a GUI
# program (-H windowsgui). Output: build/windows/{pflash,particle-flasher}.exe and a zip
# with both and a read-me (scripts/windows/package.sh checks both are PE x86-64 programs
# needing no DLL Windows lacks).
WIN         := $(BUILD)/windows
WIN_GOFLAGS := -trimpath
WIN_PURE    := GOOS=windows GOARCH=amd64 CGO_ENABLED=0
WIN_CGO     := GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc
WIN_SYSO    := cmd/particle-flasher/rsrc_windows_amd64.syso
windows: deps-windows
	@mkdir -p $(WIN)
	$(GO) run ./internal/fyneapp/winres -o $(WIN_SYSO)
	@set -e; v=$$($(GO) run ./internal/fyneapp/winres -version); \
	echo "$(WIN_PURE) $(GO) build $(WIN_GOFLAGS) -ldflags '-s -w -X main.version=$$v' -o $(WIN)/pflash.exe ./cmd/pflash"; \
	$(WIN_PURE) $(GO) build $(WIN_GOFLAGS) -ldflags "-s -w -X main.version=$$v" -o $(WIN)/pflash.exe ./cmd/pflash; \
	echo "$(WIN_CGO) $(GO) build $(WIN_GOFLAGS) -ldflags '-s -w -H windowsgui' -o $(WIN)/particle-flasher.exe ./cmd/particle-flasher"; \
	$(WIN_CGO) $(GO) build $(WIN_GOFLAGS) -ldflags "-s -w -H windowsgui" -o $(WIN)/particle-flasher.exe ./cmd/particle-flasher; \
	./scripts/windows/package.sh $(WIN) $$v

# Both Windows programs run under Wine: pflash's version and factory bench on virtual
# devices, the engine's packages' tests (go test -exec), and the app's demo walk, whose
# screenshots are checked. Its own target (about N minutes); see README, Windows.
windows-smoke: windows deps-windows-smoke
	./scripts/windows/smoke.sh $(WIN)

# Opens the desktop app; with no device attached it offers the demo device.
run: build
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
		echo "No display (DISPLAY is not set). On a headless machine try: xvfb-run -a make run"; exit 1; fi
	./$(BUILD)/particle-flasher

# The fake libusb used by tests to run dfu-util and gousb against the virtual device.
shim: $(SHIM)
$(SHIM): $(wildcard $(SHIM_SRC) $(SHIM_WIRE)/usbsim_wire.h)
	@if [ -f "$(SHIM_SRC)" ]; then mkdir -p $(dir $@) && cc -shared -fPIC -O2 -Wall -I$(SHIM_WIRE) -o $@ $(SHIM_SRC) -lpthread; fi

# particle-usb, Particle's own host library, as a peer of the virtual devices (through the
# umockdev door): installed from the npm registry as its lock file says.
PEER := peers/particle-usb
peers: $(PEER)/node_modules/.package-lock.json
$(PEER)/node_modules/.package-lock.json: $(PEER)/package.json $(PEER)/package-lock.json
	cd $(PEER) && npm ci --no-audit --no-fund --loglevel=error

vet:
	$(GO) vet ./...
	$(GO) vet -tags ci ./...

# Vet as Windows builds it, with the Windows builds' flags: everything with cgo on (the
# app's GL is C, so a plain `GOOS=windows go vet ./...`, cgo off, cannot see ui/), and
# pflash's packages with cgo off, as pflash.exe is built.
vet-windows: deps-windows
	$(WIN_CGO) $(GO) vet $(WIN_GOFLAGS) ./...
	$(WIN_PURE) $(GO) vet $(WIN_GOFLAGS) ./cmd/pflash/... ./flasher/... ./firmware-cache/... ./internal/...

# Every test: unit, integration against the virtual device and real peers (dfu-util
# through the libusb shim and through umockdev, lrzsz, picocom, Particle's particle-usb),
# widget tests with Fyne's software renderer (-tags ci), short smoke runs of the fuzz,
# soak and benchmark targets, and the Windows cross-builds with their vet (the Windows USB
# backend's table tests run in unit, on Linux).
test: deps-test shim peers vet vet-windows unit peer race-smoke fuzz-smoke bench-smoke gui-smoke windows
	@echo "make test: all passed"

unit:
	$(GO) test -tags ci -timeout $(TEST_TIMEOUT) -skip '^TestParticleUSBPeer$$' ./...

# Particle's particle-usb against the virtual devices through the umockdev door, verbose so
# that its table (request, expected, got) is in the output.
peer: deps-test shim peers
	$(GO) test -tags ci -timeout $(TEST_TIMEOUT) -count 1 -run '^TestParticleUSBPeer$$' -v ./flasher/sim/

# The race detector over the engine and pflash (-short: without the re-executed children
# behind the libusb shim). The app's packages are left to `make race`: rebuilding Fyne's cgo
# with -race costs CI minutes a smoke run should not.
race-smoke:
	$(GO) test -race -short -timeout $(TEST_TIMEOUT) ./flasher/... ./cmd/pflash/... ./firmware-cache/...

# The race detector over everything, the app included.
race: deps-test shim
	$(GO) test -race -tags ci -timeout 30m ./...

# Every reader of outside input has a fuzz target: module files, DFU layouts and replies,
# control-request replies (FuzzDecoders: the identity replies 21/554/31 and protection 76
# among them), bundles (zip, Intel HEX), listening-mode replies, the record spool file,
# the release catalog and a refresh's GitHub list. `make fuzz` runs each for FUZZTIME; `make test` a
# short run of each.
FUZZ_TARGETS = \
	./flasher/module:FuzzParse \
	./flasher/memlayout:FuzzParse \
	./flasher/modfile:FuzzParse \
	./flasher/ctrl:FuzzDecoders \
	./flasher/dfu:FuzzParseFunctionalDescriptor \
	./flasher/dfu:FuzzClient \
	./flasher/listen:FuzzReplies \
	./flasher/records:FuzzSpool \
	./firmware-cache:FuzzCatalog \
	./firmware-cache:FuzzGitHubReleases

fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZTIME=4s

fuzz:
	@GO="$(GO)" scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

# The real app under Xvfb: it must open a window and exit cleanly.
gui-smoke: deps-test
	$(GO) build -o $(BUILD)/particle-flasher ./cmd/particle-flasher
	PFLASH_SMOKE_EXIT=3s xvfb-run -a ./$(BUILD)/particle-flasher

# The real app under Xvfb in demo mode walks its main screens and saves each as a PNG in
# docs/screenshots (shown in README.md); it fails if a screen cannot be reached. Mesa's
# llvmpipe reads an Xvfb window back as zeros; softpipe captures what is on screen.
screenshots: deps-test
	$(GO) build -o $(BUILD)/particle-flasher ./cmd/particle-flasher
	mkdir -p docs/screenshots && rm -f docs/screenshots/*.png
	GALLIUM_DRIVER=softpipe xvfb-run -a -s "-screen 0 1280x800x24" ./$(BUILD)/particle-flasher --demo --screenshots docs/screenshots

# Benchmarks report ratios (wall time / device-bound time the sim charged, the 8-unit
# bench with and without recording into a real PostgreSQL), never timed assertions. The
# smoke run inside make test is the DfuSe write alone.
bench: deps-test shim peers
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

bench-smoke:
	$(GO) test -run '^$$' -bench 'Write256K' -benchtime 1x ./flasher/dfu/

soak: deps-test shim
	PFLASH_SOAK=1 $(GO) test -v -tags ci -timeout 120m -run 'Soak|Property|Campaign|Matrix' ./...

clean:
	rm -rf $(BUILD) $(WIN_SYSO)
