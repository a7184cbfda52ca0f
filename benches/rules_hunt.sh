#!/bin/bash
# Rules over JSON events, end to end, beside rsigma in the same run: `canh hunt` (release build)
# and ../shared/peers/rsigma.sh on the same 1M Sigma-taxonomy events (peers/gen_events.py) and
# the same SigmaHQ rules — the first 10 or all 452 network/Linux/web/DNS rules of
# corpora/sigma/INDEX_network_linux_web_dns.jsonl, copied into $PEERS_DIR/rsigma/rules{10,450}
# where rsigma.sh expects them. Canh runs with `--mapping none` (the events use the rules' own
# field names) and reads, parses and matches every event, like rsigma; both write matches to a
# file.
#
# usage: benches/rules_hunt.sh [10|450]   (no argument: both)
#   CANH_BIN   binary (default target/release/canh; `cargo build --release -p canh`)
#   THREADS    Canh's parse-and-match threads (default 1, as rsigma runs; the figure compared
#              is events per CPU-second either way)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared
PEERS=${PEERS:-$SHARED/peers}
. "$PEERS/lib.sh"
BIN=${CANH_BIN:-$ROOT/target/release/canh}
EV=$PEERS_DIR/data/events_1m.jsonl
mkdir -p "$PEERS_DIR/data" "$PEERS_DIR/rsigma" "$PEERS_DIR/canh-hunt"
[ -f "$EV" ] || python3 "$PEERS/gen_events.py" "$EV" 1000000
for n in 10 450; do
  d=$PEERS_DIR/rsigma/rules$n
  [ -d "$d" ] && continue
  mkdir -p "$d"
  python3 - "$SHARED/corpora/sigma" "$d" "$n" <<'PY'
import json, os, shutil, sys
root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i, line in enumerate(open(os.path.join(root, "INDEX_network_linux_web_dns.jsonl"))):
    if n == 10 and i >= 10:
        break
    src = os.path.join(root, json.loads(line)["path"])
    shutil.copy(src, os.path.join(out, "%03d_%s" % (i, os.path.basename(src))))
PY
done
if [ $# -eq 0 ]; then "$0" 10; "$0" 450; exit; fi
R=$1
D=$PEERS_DIR/canh-hunt
/usr/bin/time -f "%e %U %S %M" -o "$D/time.out" "$BIN" hunt --mapping none --threads "${THREADS:-1}" \
  --rules "$PEERS_DIR/rsigma/rules$R" --input "$EV" > "$D/out.jsonl" 2> "$D/err.txt"
read -r E U S M < "$D/time.out"
N=$(grep -o '[0-9]* event(s), [0-9]* rule(s), [0-9]* match(es)' "$D/err.txt")
EVN=$(echo "$N" | awk '{print $1}'); RN=$(echo "$N" | awk '{print $3}'); MN=$(echo "$N" | awk '{print $5}')
awk -v t="${THREADS:-1}" -v e="$E" -v u="$U" -v s="$S" -v m="$M" -v n="$EVN" -v k="$MN" -v r="$R" -v rl="$RN" 'BEGIN{c=u+s;
  printf "canh hunt threads=%s rules=%s (loaded %s) events=%d matches=%d elapsed_s=%.2f events_per_s=%.0f cpu_s=%.2f events_per_cpu_s=%.0f peak_rss_mb=%.1f\n",
  t, r, rl, n, k, e, n/e, c, n/c, m/1024}'
rm -f "$D/out.jsonl"
bash "$PEERS/rsigma.sh" "$R"
