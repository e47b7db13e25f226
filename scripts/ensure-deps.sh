#!/usr/bin/env bash
# Installs the system packages the build (and, with "test", the test suite) needs.
# On Debian/Ubuntu it runs apt-get for what is missing; elsewhere it prints exactly
# what to install and fails, so nobody is left guessing why cgo cannot find libusb.
set -euo pipefail

# Modes: build (the default), test (make test: also the Windows cross-build), windows
# (make windows), windows-smoke (make windows-smoke: Wine and Xvfb to run the .exe files).
mode=${1:-build}
want=(libusb-1.0-0-dev pkg-config xorg-dev libgl1-mesa-dev)
windows=(gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 zip unzip)
testing=""
case "$mode" in
build) ;;
test)
	want+=(xvfb dfu-util lrzsz umockdev libumockdev-dev picocom "${windows[@]}")
	# particle-usb, the peer in the tests, runs on node 20 with npm; a node from elsewhere
	# (NodeSource bundles npm) is fine, so these go by command, not by package.
	command -v node >/dev/null 2>&1 || want+=(nodejs)
	command -v npm >/dev/null 2>&1 || want+=(npm)
	testing=1
	# The record store's tests start a real PostgreSQL (initdb into a temp directory):
	# Debian's server package, unless some version's initdb is already there.
	if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
		want+=(postgresql)
	fi
	;;
windows) want=("${windows[@]}") ;;
windows-smoke) want=("${windows[@]}" wine wine64 xvfb xauth libgl1-mesa-dri tesseract-ocr tesseract-ocr-eng) ;;
*)
	echo "ensure-deps: unknown mode $mode (build, test, windows, windows-smoke)" >&2
	exit 2
	;;
esac

if ! command -v go >/dev/null 2>&1; then
	echo "Go is not installed: install Go 1.26 or newer from https://go.dev/dl/ and make sure 'go' is on PATH." >&2
	exit 1
fi

if command -v dpkg-query >/dev/null 2>&1; then
	missing=()
	for p in "${want[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing+=("$p")
		fi
	done
	if ((${#missing[@]} == 0)); then
		exit 0
	fi
	echo "Installing missing system packages: ${missing[*]}"
	sudo=""
	if [[ $(id -u) -ne 0 ]]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo="sudo"
		else
			echo "Not root and no sudo: run as root: apt-get install -y ${missing[*]}" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	# A fresh machine has no package lists; update once, quietly.
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
	exit 0
fi

# Not Debian: say exactly what is needed, per system.
echo "This system has no dpkg/apt-get; install these by hand, then re-run make:" >&2
if [[ $mode == windows* ]]; then
	echo "  the MinGW-w64 cross compiler for x86-64 (x86_64-w64-mingw32-gcc), zip and unzip" >&2
	[[ $mode == windows-smoke ]] && echo "  and Wine 8 or newer (64-bit) with Xvfb" >&2
	exit 1
fi
case "$(uname -s)" in
Darwin)
	echo "  brew install libusb pkg-config${testing:+ dfu-util lrzsz postgresql}" >&2
	echo "  (Xcode command line tools provide the C compiler and OpenGL)" >&2
	;;
*)
	if command -v dnf >/dev/null 2>&1; then
		echo "  sudo dnf install libusb1-devel pkgconf-pkg-config libX11-devel libXcursor-devel libXrandr-devel libXinerama-devel libXi-devel libXxf86vm-devel mesa-libGL-devel${testing:+ xorg-x11-server-Xvfb dfu-util lrzsz postgresql-server}" >&2
	elif command -v pacman >/dev/null 2>&1; then
		echo "  sudo pacman -S libusb pkgconf libx11 libxcursor libxrandr libxinerama libxi mesa${testing:+ xorg-server-xvfb dfu-util lrzsz postgresql}" >&2
	else
		echo "  the equivalents of the Debian packages: ${want[*]}" >&2
	fi
	;;
esac
exit 1
