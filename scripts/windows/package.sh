#!/usr/bin/env bash
# Checks the Windows build in DIR (default build/windows) and zips it with its read-me:
# both files are PE executables for x86-64, the app is a GUI-subsystem program carrying
# the icon and version resources from FyneApp.toml, pflash a console program, and
# neither needs a DLL that Windows does not ship.
set -euo pipefail
dir=${1:-build/windows}
version=${2:?usage: package.sh DIR VERSION}
objdump=x86_64-w64-mingw32-objdump

fail() { echo "windows package: $*" >&2; exit 1; }

# DLLs every Windows 10 and later has (the C runtime msvcrt included).
system_dlls='^(kernel32|user32|gdi32|opengl32|shell32|advapi32|ws2_32|winmm|ole32|oleaut32|imm32|msvcrt|ntdll|shlwapi|dwmapi|comdlg32|setupapi|cfgmgr32|winusb|iphlpapi|dnsapi|userenv|powrprof|secur32|crypt32|bcrypt|bcryptprimitives|version|uxtheme|comctl32|api-ms-win-.*)\.dll$'

check_exe() { # file subsystem(2 GUI, 3 console)
	local f=$1 want=$2
	[[ -s $f ]] || fail "$f is missing"
	[[ $(head -c2 "$f") == MZ ]] || fail "$f is not an MZ/PE file"
	local hdr
	hdr=$($objdump -p "$f")
	grep -q '^Magic[[:space:]]*020b' <<<"$hdr" || fail "$f is not PE32+ (64-bit)"
	grep -qE "^Subsystem[[:space:]]+0*$want" <<<"$hdr" || fail "$f: subsystem is not $want ($(grep '^Subsystem' <<<"$hdr"))"
	local dll
	while read -r dll; do
		shopt -s nocasematch
		[[ $dll =~ $system_dlls ]] || fail "$f imports $dll, which Windows does not ship"
		shopt -u nocasematch
	done < <(sed -n 's/^[[:space:]]*DLL Name: //p' <<<"$hdr")
	echo "$f: PE32+ x86-64, subsystem $want, $(stat -c %s "$f") bytes, imports $(sed -n 's/^[[:space:]]*DLL Name: //p' <<<"$hdr" | sort -u | tr '\n' ' ')"
}

check_exe "$dir/pflash.exe" 3
check_exe "$dir/particle-flasher.exe" 2
# grep reads whole outputs here: with pipefail, grep -q stopping early makes the writer's
# SIGPIPE fail the pipeline even on a match.
grep -q '\.rsrc' <<<"$($objdump -h "$dir/particle-flasher.exe")" || fail "particle-flasher.exe has no resources (icon, version)"
# The version resource holds the product name in UTF-16.
name16=$(printf 'Particle Flasher' | iconv -f UTF-8 -t UTF-16LE | od -An -tx1 | tr -d ' \n')
grep -q "$name16" <<<"$(od -An -tx1 -v "$dir/particle-flasher.exe" | tr -d ' \n')" || fail "particle-flasher.exe has no version resource naming the product"

zip=$dir/particle-flasher-$version-windows-amd64.zip
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$dir/pflash.exe" "$dir/particle-flasher.exe" "$stage/"
# The read-me in Windows line endings, with the version filled in.
sed "s/@VERSION@/$version/; s/\$/\r/" "$(dirname "$0")/README.txt" >"$stage/README.txt"
rm -f "$zip"
zipabs=$(realpath -m "$zip")
(cd "$stage" && zip -q -X -9 "$zipabs" particle-flasher.exe pflash.exe README.txt)
grep -q 'particle-flasher.exe' <<<"$(unzip -l "$zip")" || fail "$zip lacks particle-flasher.exe"
echo "$zip: $(stat -c %s "$zip") bytes: $(unzip -Z1 "$zip" | tr '\n' ' ')"
