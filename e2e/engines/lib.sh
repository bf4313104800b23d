# Shared by the engine scripts (sourced): result counting and an interactive tty session.
pass=0 fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass=$((pass+1)); echo "ok - $name: $1"
  else fail=$((fail+1)); echo "not ok - $name: $1: expected [$2], got [$3]"; fi
}
# tty_session LABEL COMMAND...: runs COMMAND (which starts `sh` on a tty) under expect, types a
# line, checks it ran on a pty and saw the input, and that `exit 3` came back as the status.
tty_session() {
  label=$1; shift
  command -v expect >/dev/null || { fail=$((fail+1)); echo "not ok - $name: $label: expect not installed"; return; }
  out=$(expect -c "
    set timeout 20
    spawn $*
    expect \"# \"
    send \"tty; echo \\\$((6*7))\r\"
    expect \"42\"
    send \"exit 3\r\"
    expect eof
    catch wait result
    puts \"EXIT=[lindex \$result 3]\"
  " 2>&1)
  check "$label: a pty and input" "yes" "$(echo "$out" | grep -q '/dev/pts/' && echo "$out" | grep -q '^42' && echo yes || echo no)"
  check "$label: exit code" "EXIT=3" "$(echo "$out" | grep -o 'EXIT=[0-9]*' | tail -1)"
}
summary() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }
