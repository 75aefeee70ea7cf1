# Case bookkeeping shared by the e2e suites (sourced after lib.sh): one PASS/FAIL
# line per case, counters, and the plain summary line even when set-up dies.
# A suite sets EGW_SUITE (its name) before sourcing this file.

PASSED=0
FAILED=0

# report OK DESCRIPTION [DETAIL]: prints one PASS/FAIL line and counts it.
report() {
  local ok=$1 desc=$2 detail=${3:-}
  if [ "$ok" -eq 1 ]; then
    PASSED=$((PASSED + 1))
    echo "PASS $desc${detail:+ ($detail)}"
  else
    FAILED=$((FAILED + 1))
    EGW_KEEP_WORK=1
    echo "FAIL $desc${detail:+: $detail}"
  fi
}

# A set-up failure is one failed case: the summary line is still printed.
egw_on_die() {
  report 0 "${EGW_SUITE:-e2e} set-up" "$1"
  echo "$PASSED passed, $FAILED failed"
}

# check DESCRIPTION CMD...: runs CMD; its output goes to the work dir's checks.log and
# its last line is the case's detail.
check() {
  local desc=$1 out rc
  shift
  out=$("$@" 2>&1)
  rc=$?
  [ -d "$EGW_WORK" ] && printf '== %s\n%s\n' "$desc" "$out" >>"$EGW_WORK/checks.log"
  if [ "$rc" -eq 0 ]; then
    report 1 "$desc" "$(echo "$out" | tail -n 1)"
  else
    report 0 "$desc" "$(echo "$out" | tail -n 1)"
  fi
}

# egw_finish [WHAT]: removes everything the suite made (logs stay on failure), checks
# nothing is left, prints the summary line; returns non-zero when any case failed.
egw_finish() {
  [ "$FAILED" -eq 0 ] || EGW_KEEP_WORK=1
  egw_cleanup
  check "cleanup leaves no ${1:-namespace, process or shm object}" egw_leftovers
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# Runs one case "description|namespace|expectation|command" and reports it. The
# expectation: "ok" (exit 0) or "exit=N[,M...]" (one of these), optionally
# " within=S" (seconds).
run_case() {
  local desc ns expect cmd want="" within="" w
  IFS='|' read -r desc ns expect cmd <<<"$1"
  for w in $expect; do
    case "$w" in
      ok) want=0 ;;
      exit=*) want=${w#exit=} ;;
      within=*) within=${w#within=} ;;
    esac
  done
  echo "== $desc: $cmd" >>"$EGW_WORK/cases.log"
  egw_exec_case "$ns" "$cmd"
  local detail="exit $CASE_RC in ${CASE_SECS}s"
  if [[ ",$want," != *",$CASE_RC,"* ]]; then
    report 0 "$desc" "$detail, expected exit $want"
  elif [ -n "$within" ] && ! awk -v t="$CASE_SECS" -v l="$within" 'BEGIN { exit !(t <= l) }'; then
    report 0 "$desc" "$detail, expected within ${within}s"
  else
    report 1 "$desc" "$detail"
  fi
}
