#!/usr/bin/env bash
# Installs the system packages the build (and, with "test", the test suite) needs.
# On Debian/Ubuntu it runs apt-get for what is missing; elsewhere it prints exactly
# what to install and fails, so nobody is left guessing why cgo cannot find libusb.
set -euo pipefail

want=(libusb-1.0-0-dev pkg-config xorg-dev libgl1-mesa-dev)
testing=""
if [[ "${1:-build}" == "test" ]]; then
	want+=(xvfb dfu-util lrzsz umockdev libumockdev-dev picocom)
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
fi

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
