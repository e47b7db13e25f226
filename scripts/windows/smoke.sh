#!/usr/bin/env bash
# make windows-smoke: the Windows build run under Wine (Debian's Wine 8, 64-bit).
#   1. pflash.exe version
#   2. pflash.exe bench: the factory engine on virtual devices, in one process
#   3. the engine's packages' tests, built for Windows and run with `go test -exec wine`
#   4. the app's demo walk (--demo --screenshots) under Xvfb; every screen's PNG is
#      checked: present, non-trivial, and the devices screen read back (OCR) names the
#      demo's devices.
# What Wine cannot show: USB through WinUSB (Wine's winusb.dll is stubs). See README,
# "Windows".
set -euo pipefail
cd "$(dirname "$0")/../.."
win=${1:-build/windows}
GO=${GO:-go}
build=$(dirname "$win")
test_dir=$(realpath -m "$build/windows-test")
export WINEPREFIX=$(realpath -m "$build/wine")
export WINEDEBUG=-all
# No Mono or Gecko: nothing here needs them, and their installers would ask.
export WINEDLLOVERRIDES="mscoree,mshtml="
export WINEARCH=win64
mkdir -p "$test_dir"

step() { printf '\n== windows-smoke: %s\n' "$*"; }
fail() { echo "windows-smoke: FAIL: $*" >&2; exit 1; }
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT

step "Wine prefix $WINEPREFIX with the test-only bcryptprimitives.dll"
# Go 1.26 programs take random bytes from ProcessPrng in bcryptprimitives.dll, which real
# Windows 10+ has and Wine 8 lacks; scripts/windows/bcryptprimitives.c provides it over
# RtlGenRandom, in this prefix only (it is never shipped).
x86_64-w64-mingw32-gcc -shared -O2 -Wall -o "$test_dir/bcryptprimitives.dll" \
	scripts/windows/bcryptprimitives.c scripts/windows/bcryptprimitives.def -ladvapi32
if [[ ! -f $WINEPREFIX/system.reg ]]; then
	wineboot -i >/dev/null 2>&1 || fail "wineboot could not create the prefix"
	wineserver -w
fi
cp "$test_dir/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"

step "pflash.exe version"
want_version=$($GO run ./internal/fyneapp/winres -version)
out=$(wine "$win/pflash.exe" version)
echo "$out"
[[ $out == *"pflash $want_version "* && $out == *"windows/amd64"* ]] || fail "pflash.exe version printed '$out', wanted version $want_version on windows/amd64"

step "pflash.exe bench: the factory engine on 4 virtual Borons, 1.5.2 -> 4.1.0"
# The virtual devices' serial ports are ptys, which Windows has not: the sim says so per
# boot and the bench goes on over USB control and DFU, as the factory does.
json=$(wine "$win/pflash.exe" bench --devices 4 --scale 0.05 --json 2>"$test_dir/bench.log") || {
	tail -20 "$test_dir/bench.log" >&2
	fail "pflash.exe bench failed"
}
echo "$json"
grep -q '"devices": *4' <<<"$json" || fail "bench did not run 4 devices"
grep -Eq '"parallel_units_per_min": *[1-9]' <<<"$json" || fail "bench finished no unit"

step "the engine's packages' tests under Wine (go test -exec wine)"
# Wine answers the FileDispositionInformationEx that Go's os.RemoveAll asks for with
# STATUS_NOT_IMPLEMENTED, which Go does not take for "use the fallback" (it does for the
# answers of Windows before 10 1607), so every t.TempDir clean-up fails under Wine. For this
# run only, the test binaries are built with an -overlay of that one standard-library file
# that adds Wine's answer to the fallback list; what ships is built without it.
goroot=$($GO env GOROOT)
at=$goroot/src/internal/syscall/windows/at_windows.go
# Outside the module, so that no ./... pattern takes the overlay for a package of ours.
overlay_dir=$(mktemp -d)
trap 'wineserver -k >/dev/null 2>&1 || true; rm -rf "$overlay_dir"' EXIT
sed 's#^\tcase STATUS_INVALID_INFO_CLASS, // the operating system#\tcase NTStatus(0xC0000002), // STATUS_NOT_IMPLEMENTED: Wine (windows-smoke overlay)\n\t\tSTATUS_INVALID_INFO_CLASS, // the operating system#' "$at" >"$overlay_dir/at_windows.go"
grep -q 'windows-smoke overlay' "$overlay_dir/at_windows.go" ||
	fail "$at changed (Go $($GO env GOVERSION)): revisit the Wine clean-up overlay in $0"
printf '{"Replace":{"%s":"%s"}}\n' "$at" "$overlay_dir/at_windows.go" >"$overlay_dir/overlay.json"
# The packages whose tests need no Linux test harness. Left out, with why: cmd/pflash,
# flasher/device, flasher/listen, flasher/run, flasher/sim, flasher/sim/serialdev and
# flasher/sim/usbsim drive virtual devices through ptys or the libusb shim, both Linux-only.
pkgs=(
	./flasher/ctrl ./flasher/dfu ./flasher/factory ./flasher/factory/throughput ./flasher/led
	./flasher/memlayout ./flasher/modfile ./flasher/module ./flasher/plan ./flasher/platform
	./flasher/remedy ./flasher/serialport ./flasher/slots ./flasher/state ./flasher/usb
	./flasher/sim/ctrldev ./flasher/sim/dfudev ./flasher/sim/flash
	./firmware-cache ./internal/fyneapp
)
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $GO test -count=1 -timeout 10m \
	-overlay "$overlay_dir/overlay.json" -exec wine "${pkgs[@]}"

step "particle-flasher.exe --demo --screenshots under Xvfb"
shots=$test_dir/screenshots
rm -rf "$shots" && mkdir -p "$shots"
shots_win=$(winepath -w "$shots")
: >"$test_dir/app.log"
# A fresh wineserver, started inside Xvfb, so that Wine's desktop has the display (one
# started outside it, by winepath or the tests, has none and GLFW cannot make a window).
wineserver -k >/dev/null 2>&1 || true
wineserver -w
# The app runs in the background so that the walk's end and the app's exit are told
# apart: Fyne 2.7.1 can hang after Quit (its shutdown drains the main-thread queue while
# the lifecycle's OnStopped hook, the preferences save, is still being queued; the hook's
# wait is never answered). Under Wine that happens in about half the runs; see README,
# Windows. A walk that does not finish, or an app that exits with an error, fails here;
# an app that saved every screen and then does not exit within a minute is ended and
# reported.
set +e
GALLIUM_DRIVER=softpipe timeout 900 xvfb-run -a -s "-screen 0 1280x800x24" sh -c '
	wine "$1" --demo --screenshots "$2" >>"$3" 2>&1 & pid=$!
	end=$(($(date +%s) + 600))
	while kill -0 $pid 2>/dev/null && [ "$(date +%s)" -lt $end ]; do
		grep -q "screen=settings\|some screens could not be taken" "$3" && break
		sleep 1
	done
	end=$(($(date +%s) + 60))
	while kill -0 $pid 2>/dev/null && [ "$(date +%s)" -lt $end ]; do sleep 1; done
	if kill -0 $pid 2>/dev/null; then
		echo "APP-DID-NOT-EXIT" >>"$3"
		wineserver -k
		exit 99
	fi
	wait $pid; rc=$?
	wineserver -w
	exit $rc' sh "$win/particle-flasher.exe" "$shots_win" "$test_dir/app.log" >/dev/null 2>&1
rc=$?
set -e
: >"$test_dir/app-exit-hang"
if ((rc == 99)); then
	echo "windows-smoke: WARNING: the app saved its screens but did not exit within a minute of the walk (the Fyne shutdown hang above); it was ended" >&2
	echo hang >"$test_dir/app-exit-hang"
elif ((rc != 0)); then
	grep -v 'Fyne call thread\|  From: ' "$test_dir/app.log" | tail -30 >&2
	fail "the app's demo walk failed under Wine (exit $rc)"
fi
# The walk saves one PNG per main screen, the same screens as the Linux walk that makes
# docs/screenshots.
for ref in docs/screenshots/*.png; do
	f=$shots/$(basename "$ref")
	[[ -s $f ]] || fail "no $(basename "$ref") from the Windows walk"
	[[ $(head -c8 "$f" | od -An -tx1 | tr -d ' ') == 89504e470d0a1a0a ]] || fail "$f is not a PNG"
	(($(stat -c %s "$f") > 20000)) || fail "$f is too small to show a screen ($(stat -c %s "$f") bytes)"
done
# Sparse-text mode (--psm 11) reads the device list's column as well as the panel beside it.
text=$(tesseract "$shots/01-devices.png" - --psm 11 2>/dev/null)
for want in Argon Photon Boron "Device OS"; do
	grep -q "$want" <<<"$text" || fail "the devices screen does not show '$want'; it reads:
$text"
done
text=$(tesseract "$shots/06-factory.png" - --psm 11 2>/dev/null)
for want in Argon Photon Boron "Device OS"; do
	grep -q "$want" <<<"$text" || fail "the factory screen does not show '$want'; it reads:
$text"
done
echo "screenshots in $shots: $(ls "$shots" | tr '\n' ' ')"
echo
if [[ -s $test_dir/app-exit-hang ]]; then
	echo "windows-smoke: passed; the app's exit hang after the walk is reported above"
else
	echo "windows-smoke: passed"
fi
