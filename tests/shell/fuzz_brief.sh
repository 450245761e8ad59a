#!/usr/bin/env bash
# A short libFuzzer run of every target (request parsing and validation,
# CloudEvents envelopes, JSON) inside `make test`; `make fuzz` runs longer.
# Fails on any crash, leak or sanitizer report.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(make -s fuzz FUZZ_SECONDS="${FUZZ_BRIEF_SECONDS:-8}" 2>&1)
status=$?
grep -E "^(Done|==[0-9]+==ERROR|SUMMARY)|crash-|leak-" <<<"$out"
[ "$status" -eq 0 ] || { tail -n 40 <<<"$out"; exit 1; }
