#!/usr/bin/env bash
# fuzz.sh FUZZTIME PKG:FUNC... — runs each fuzz target for FUZZTIME.
#
# Go 1.26's fuzzing coordinator can end a duration-bounded run with a bare "context deadline
# exceeded" at the FUZZTIME boundary when a loaded machine keeps a worker from acknowledging
# the stop in time (golang/go#75804, fixed in Go 1.27). That is not a finding: a real one
# prints "Failing input written to testdata/fuzz/..." (or a panic, or the target's own
# error). So a run that fails with nothing but that line is told apart, and the target's
# seeds and corpus are replayed deterministically instead; that replay must pass. Any other
# failure fails at once.
set -euo pipefail
GO=${GO:-go}
fuzztime=$1
shift
for t in "$@"; do
	pkg=${t%%:*}
	fn=${t##*:}
	echo "fuzz $pkg $fn ($fuzztime)"
	log=$(mktemp)
	if $GO test -run '^$' -fuzz "^$fn\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
		rm -f "$log"
		continue
	fi
	# Only the coordinator's own line, no reproducer, no panic, no error of the target.
	if grep -q '^    context deadline exceeded$' "$log" &&
		! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:|fuzzing process hung|terminated unexpectedly' "$log"; then
		echo "fuzz $pkg $fn: the run ended on Go's fuzztime deadline race (golang/go#75804), not on an input; replaying its seeds and corpus"
		rm -f "$log"
		$GO test -count=1 -run "^$fn\$" "$pkg"
		continue
	fi
	rm -f "$log"
	echo "fuzz $pkg $fn: FAILED (see above)" >&2
	exit 1
done
