#!/usr/bin/env bash
# Writes bench/RESULTS.md from the benchmarks' output in $BENCH_OUT (bench/out): the machine,
# the commands, every table, each target's verdict computed from the numbers, and the
# discussion in bench/analysis.md (written by hand after reading a run; it names the run it
# was written from). Called by bench/run.sh; can be re-run alone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${BENCH_OUT:-$HERE/out}"
RESULTS="${BENCH_RESULTS:-$HERE/RESULTS.md}"

# An awk function (POSIX awk: Debian's default is mawk): median(" a b c") of a blank-separated list.
readonly MEDIAN_AWK='function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
'

hw() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$OUT_DIR/hardware.tsv"; }
have() { [[ -s "$OUT_DIR/$1" ]]; }

header() {
  cat <<EOF
# Benchmarks: the credential step against the alternatives, and the targets

Written by \`bench/report.sh\` from the runs listed under Commands (bench scripts at commit $(hw commit)); raw numbers in
\`bench/out/\`. Re-run everything with \`make bench\` (or \`sudo bash bench/run.sh\`), one benchmark
with \`BENCH_ONLY=fanout bash bench/run.sh\`.

## Machine

| | |
|---|---|
| cores (\`nproc\`) | $(hw nproc), shared with other jobs running at the same time |
| CPU (\`lscpu\` model) | $(hw cpu) |
| memory | $(hw memory) |
| kernel | $(hw kernel) |
| OpenSSL | $(hw openssl) |
| agent | $(hw agent) ($(hw agent_binary)) |
| load average (1, 5, 15 min), around the latest \`run.sh\` | before: $(hw load_before); after: $(hw load_after) |

The cores are shared and the load was high throughout: every number below is a median of
repeated runs, and every comparison is a ratio of numbers measured in the same run, in
interleaved rounds. No absolute time here should be read as what the code costs on an idle
machine.

## Commands

| benchmark | command (from the repository root, as root) | started | seconds | load average (1 min) |
|---|---|---|---|---|
EOF
  tail -n +2 "$OUT_DIR/commands.tsv" | sort -t"$(printf '\t')" -k3,3 |
    awk -F'\t' '{ printf "| %s | `%s` | %s | %s | %s |\n", $1, $2, $3, $4, $5 }'
  echo
}

keystore_write() {
  have keystore_write.tsv || return 0
  cat <<'EOF'
## 1. One node's credential write

The same change on the same keystore (made by the engine's own code: `keystore.seed`, no
password): `s3.client.bench.access_key` and `.secret_key` set to fresh values. **agent**: `POST
/keystore` (curl's total time, a warm agent, no node reload). **tool x2**: two `<engine>-keystore
add --force --stdin NAME` runs, one per setting (what the upstream design's agent does). **tool
x1**: one `add --force NAME NAME` run. For releases whose tool is not published (none for 7.0.x
or 8.14-8.17), the same runs of **a Java program over that release's own `KeyStoreWrapper`**
(`bench/WrapperTool.java`, one JVM per run, the tools' heap options), marked *program*. Each
way's result is listed by the engine's own code afterwards (both settings and the seed).
p99 is the nearest-rank 99th percentile: with fewer than 100 samples it is the slowest one.

| format | engine's code | agent p50 / p99 ms | tool x2 p50 / p99 ms | tool x1 p50 / p99 ms | x2 / agent | x1 / agent | target: x2 / agent >= 10 |
|---|---|---|---|---|---|---|---|
EOF
  awk -F'\t' 'NR > 1 { key = $1 FS $2 FS $3 FS $4; if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
      p50[key, $5] = $7; p99[key, $5] = $8; n[key, $5] = $6
      label[key] = $2 " " $3 ($4 == "program" ? " (*program*)" : " (tool)"); fmt[key] = $1 }
    END {
      for (i = 1; i <= nk; i++) {
        k = keys[i]
        r2 = p50[k, "two"] / p50[k, "agent"]; r1 = p50[k, "one"] / p50[k, "agent"]
        printf "| %s | %s | %.1f / %.1f (n=%d) | %.0f / %.0f (n=%d) | %.0f / %.0f (n=%d) | %.0f | %.0f | %s |\n",
          fmt[k], label[k], p50[k, "agent"], p99[k, "agent"], n[k, "agent"], p50[k, "two"], p99[k, "two"], n[k, "two"],
          p50[k, "one"], p99[k, "one"], n[k, "one"], r2, r1, (r2 >= 10 ? "met" : sprintf("**missed** (%.1f x)", r2))
      } }' "$OUT_DIR/keystore_write.tsv"
  cat <<'EOF'

### The floor: key derivations

One PBKDF2-HMAC-SHA512 derivation with the format's iterations and key size, in-process:
**native** through the system's OpenSSL (Debian's Python `hashlib`, the same OpenSSL release
the agent links statically), wall and CPU time; **Java** through JCE in a fresh JVM (the tools'
case: a cold JIT). **Derivations per write** = the agent's CPU time per write (its
`/proc/<pid>/stat` over all timed writes, 10 ms ticks) / one native derivation's CPU time.
**Rest** = what a write costs besides its one derivation: the agent's CPU per write - one
derivation's CPU (the target's measure: CPU time does not count the time a loaded machine keeps
a process waiting), and as wall time (HTTP included), agent - derivation, by medians and by
minima. **In-agent** = the agent's own mean save time (`es_agent_keystore_change_duration_seconds`
sum / count: lock, read, derive, decrypt, seal, fsync, rename; wall time, so it includes waiting
for a core). With 210,000 iterations a derivation's CPU time itself varies by some 15% between
processes here, more than the whole rest: there the rest cannot be resolved, and the 10,000-
iteration formats, whose write is the same code, measure it.

| format | iterations, key | native derivation p50 wall / CPU ms | Java (cold JVM) p50 ms | agent CPU per write ms | derivations per write | rest, CPU ms | rest, wall p50 / min ms | in-agent mean ms | target: rest < 5 ms | salt: agent keeps it / tool runs change it |
|---|---|---|---|---|---|---|---|---|---|---|
EOF
  awk -F'\t' 'NR == FNR { if (FNR > 1 && $5 == "agent") { a[$1 FS $2 FS $3 FS $4] = $7; amin[$1 FS $2 FS $3 FS $4] = $9 }; next }
    FNR > 1 { k = $1 FS $2 FS $3 FS $4; restc = $10 - $8
      if ($5 > 10000) verdict = sprintf("not resolvable (%+.0f ms: derivation noise)", restc)
      else verdict = (restc < 5 ? "met" : sprintf("**missed** (%.1f ms over)", restc - 5))
      printf "| %s | %d, AES-%d | %.1f / %.1f | %.1f | %.1f | %.2f | %.1f | %.1f / %.1f | %.1f | %s | %s / %s |\n",
        $1, $5, $6, $7, $8, $9, $10, ($8 > 0 ? $10 / $8 : 0), restc, a[k] - $7, amin[k] - $14, $11,
        verdict, ($12 == "true" ? "yes" : "no"), ($13 == "true/true" ? "yes" : "not always") }' \
    "$OUT_DIR/keystore_write.tsv" "$OUT_DIR/keystore_floor.tsv"
  echo
}

fanout() {
  have fanout_summary.tsv || return 0
  cat <<'EOF'
## 2. The credential step across 1, 8, 32 and 128 agents

The backup job's own code (`set_keystores` from `addons/elasticsearch/dataprotection/common.sh`,
through `bench/fanout_step.sh`), fed the list of agents directly (the declared seam), against
agents for Elasticsearch 8.19.21 (format 7, 210,000 iterations) on 127.0.1.1-127.0.1.128:8080,
one config directory each, all on this host. **parallel**: the job's fan-out (its default
`AGENT_PARALLELISM`, 32). **sequential**: the same worker (`write_node`) for one node after the
other. **agents' CPU**: their utime + stime during the parallel run. **job's CPU**: the job
side's (the shell, its subshells, curl and jq). **bound** = 1.5 x (agents' CPU / cores + one
node's time), one node's time being the 1-agent parallel median. **cores used** = (agents' +
job's CPU) / wall: what the run got of the shared cores.

![credential step time against the node count](fanout.png)

| agents | parallel ms | sequential ms | sequential / parallel | agents' CPU ms | job's CPU ms | job's / agents' CPU | cores used | bound ms | parallel / bound | target: parallel <= bound |
|---|---|---|---|---|---|---|---|---|---|---|
EOF
  awk -F'\t' 'NR > 1 { printf "| %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.2f | %.0f | %.2f | %s |\n",
      $1, $2, $3, $10, $4, $5, ($4 > 0 ? $5 / $4 : 0), $12, $8, $9,
      ($9 <= 1 ? "met" : sprintf("**missed** (%.0f%% over)", ($9 - 1) * 100)) }' \
    "$OUT_DIR/fanout_summary.tsv"
  cat <<'EOF'

The same bound with the cores the run actually got (**cores used** in place of the machine's
cores: what the target asks of the orchestration once the host's other load is taken out):

| agents | bound with cores used, ms | parallel / that |
|---|---|---|
EOF
  awk -F'\t' 'NR > 1 && $12 > 0 { b = 1.5 * ($4 / $12 + $7); printf "| %s | %.0f | %.2f |\n", $1, b, $2 / b }' \
    "$OUT_DIR/fanout_summary.tsv"
  echo
  echo "Per agent (linearity): parallel wall time and the job's CPU time divided by the agent count."
  echo
  echo "| agents | parallel ms per agent | job's CPU ms per agent | agents' CPU ms per agent |"
  echo "|---|---|---|---|"
  awk -F'\t' 'NR > 1 { printf "| %s | %.0f | %.0f | %.0f |\n", $1, $2 / $1, $5 / $1, $4 / $1 }' "$OUT_DIR/fanout_summary.tsv"
  echo
}

memory() {
  have memory.tsv || return 0
  local requests clients seconds writes bin stripped idle after hwm
  read -r requests clients seconds writes <<<"$(awk -F'\t' '$1 == "requests" { print $2, $3, $4, $5 }' "$OUT_DIR/memory.tsv")"
  read -r bin stripped <<<"$(awk -F'\t' '$1 == "binary_bytes" { print $2, $3 }' "$OUT_DIR/memory.tsv")"
  idle="$(awk -F'\t' '$1 == "idle" { print $2 }' "$OUT_DIR/memory.tsv")"
  read -r after hwm <<<"$(awk -F'\t' '$1 ~ /^after_/ { print $2, $3 }' "$OUT_DIR/memory.tsv")"
  cat <<EOF
## 3. Memory and size

One agent (Elasticsearch 7.17.29, format 4) on 127.0.1.1:8080; $requests requests from
$clients curl clients at once, each keeping its connection ($seconds s): a tenth \`POST
/keystore\` ($writes saves), the rest \`GET /health\`, \`/ready\` (503 here: no node),
\`/keystore\` and \`/metrics\`; every status checked. From \`/proc/<pid>/status\`.

| state | VmRSS KiB | VmHWM (peak) KiB | RssAnon KiB | threads |
|---|---|---|---|---|
EOF
  awk -F'\t' '$1 == "idle" || $1 ~ /^after_/ { printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$OUT_DIR/memory.tsv"
  awk -v i="$idle" -v a="$after" -v h="$hwm" -v b="$bin" -v s="$stripped" 'BEGIN {
    worst = (h > a ? h : a)
    printf "\nTarget, under 8 MiB resident: **%s** (peak %.1f MiB, %.0f%% of the limit; the upstream design quotes 30-50 MiB).\n", (worst < 8192 ? "met" : "missed"), worst / 1024, worst * 100 / 8192
    printf "\nBinary (static, x86-64): %.1f MiB (%d bytes); stripped of symbols: %.1f MiB (%d bytes).\n\n", b / 1048576, b, s / 1048576, s }'
}

job_overhead() {
  have job_overhead.tsv || return 0
  cat <<'EOF'
## 4. The jobs' overhead on the demo cluster

A cluster of the demo's kind of the bench's own (`tests/e2e/cluster.sh` with
`E2E_NODE_ADDRS_LIST="127.0.0.111 127.0.0.112 127.0.0.113" E2E_S3_PORT=7073
E2E_WORK=/tmp/es-bench`): three OpenSearch 3.6.0 nodes, an agent each, versitygw. 3 indices of 3
shards and 1 replica. `backup.sh` and `restore.sh` run as `tests/e2e/demo.sh` runs them, with
the jobs' default settings. **engine** = the snapshot's `end_time - start_time` (ms, from `GET
_snapshot`), and for the restore the first `SNAPSHOT` shard recovery's start to the last one's
stop (`_recovery`). **overhead** = wall - engine. **load** = the host's 1-minute load average
when the job started (2 cores: above 2, the jobs and the nodes waited for a core). Round 1 is
the first backup and restore after the cluster started (the nodes' JIT still cold): shown, but
left out of the medians when later rounds ran.

| round | job | wall ms | engine ms | overhead ms | load | target: overhead < 2000 ms |
|---|---|---|---|---|---|---|
EOF
  awk -F'\t' 'NR > 1 { printf "| %s | %s | %.0f | %s | %.0f | %s | %s |\n", $1, $2, $3, $4, $5, ($7 == "" ? "?" : $7),
      ($5 < 2000 ? "met" : sprintf("**missed** (+%.1f s)", ($5 - 2000) / 1000)) }' "$OUT_DIR/job_overhead.tsv"
  echo
  # Round 1 counts only when it is the only one.
  awk -F'\t' "$MEDIAN_AWK"'NR > 1 { all[$2] = all[$2] " " $5; if ($1 > 1) warm[$2] = warm[$2] " " $5 }
    END { for (j in all) printf "Median overhead, %s (%s): %.1f s.\n", j, (j in warm ? "rounds 2 on" : "round 1"),
            median(j in warm ? warm[j] : all[j]) / 1000 }' \
    "$OUT_DIR/job_overhead.tsv" | sort
  if have job_phases.tsv; then
    cat <<'EOF'

Where the time goes: milestones of the jobs' own log lines, timed as they were printed (median
over the rounds, ms since the previous milestone; logs in `bench/out/job-logs/`).

| job | phase | median ms |
|---|---|---|
EOF
    awk -F'\t' "$MEDIAN_AWK"'NR > 1 { k = $2 FS $3; if (!(k in v)) keys[++nk] = k; v[k] = v[k] " " $4 }
      END { for (i = 1; i <= nk; i++) { split(keys[i], p, FS); printf "| %s | %s | %.0f |\n", p[1], p[2], median(v[keys[i]]) } }' \
      "$OUT_DIR/job_phases.tsv"
  fi
  echo
}

main() {
  [[ -s "$OUT_DIR/hardware.tsv" ]] || {
    echo "report: no $OUT_DIR/hardware.tsv: run bench/run.sh first" >&2
    exit 1
  }
  {
    header
    keystore_write
    fanout
    memory
    job_overhead
    if [[ -f "$HERE/analysis.md" ]]; then cat "$HERE/analysis.md"; fi
  } >"$RESULTS.tmp"
  mv -f "$RESULTS.tmp" "$RESULTS"
}

main "$@"
