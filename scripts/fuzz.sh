#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with -sanitize=fuzzer,address and runs
# each one, from the seed corpus in fuzz/corpus/<target>, for FUZZ_SECONDS
# (default 60) or FUZZ_RUNS executions. Inputs that crash go to
# .build-fuzz/fuzz-crashes/<target>/ (not artifacts/, which SwiftPM owns); the working corpus grows in
# .build-fuzz/fuzz-corpus/<target>/ (the committed seeds stay as they are).
# Prints executions and crashes per target; exits 1 if any target crashed.
#
#   make fuzz                                  one minute per target
#   FUZZ_RUNS=10000000 make fuzz               ten million executions each
#   FUZZ_TARGETS="FuzzRouter" make fuzz        one target
set -euo pipefail
cd "$(dirname "$0")/.."

targets=${FUZZ_TARGETS:-"FuzzMultipart FuzzForms FuzzJSONBody FuzzRouter"}
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-}
build=.build-fuzz

(cd fuzz && swift build -c release --build-path "../$build" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing)

status=0
for target in $targets; do
    corpus=$build/fuzz-corpus/$target
    artifacts=$build/fuzz-crashes/$target
    mkdir -p "$corpus" "$artifacts"
    cp -n fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    limit=(-max_total_time="$seconds")
    if [ -n "$runs" ]; then limit=(-runs="$runs"); fi
    log=$build/$target.log
    set +e
    # detect_leaks=0: the targets keep process-wide state (a store, a router) on purpose.
    ASAN_OPTIONS=detect_leaks=0 "$build/release/$target" "${limit[@]}" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" -timeout=10 -rss_limit_mb=2048 "$corpus" >"$log" 2>&1
    code=$?
    set -e
    executed=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -o '[0-9]*$' || echo "?")
    crashes=$(find "$artifacts" -type f | wc -l)
    echo "$target: $executed executions ($rate/s), exit $code, $crashes crashing input(s) in $artifacts (log $log)"
    if [ "$code" -ne 0 ] || [ "$crashes" -ne 0 ]; then status=1; fi
done
exit $status
