#!/usr/bin/env bash
# Builds the fuzz targets once and runs each one for a bounded time (see fuzz/README.md).
#
#   bash fuzz/run.sh ci    [target...]   # what CI runs: 10 s per target (FUZZ_SECS to change)
#   bash fuzz/run.sh long  [target...]   # by hand: 10 min per target (FUZZ_SECS to change)
#   bash fuzz/run.sh merge [target...]   # add the working corpus's new finds to the seeds
#
# Corpora: the seeds in fuzz/corpus/<target>/ are committed and only read. What a run finds
# goes to a working corpus, fuzz/target/corpus/<target>/ (build output, ignored by git), which
# later runs on the same checkout start from; `merge` copies into the seeds only the inputs
# that add coverage, for review and commit. A crash is saved in fuzz/artifacts/<target>/, the
# script prints the command that reproduces it, runs the remaining targets, and exits 1.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-}
[ $# -gt 0 ] && shift
case "$profile" in
  ci) secs=${FUZZ_SECS:-10} ;;
  long) secs=${FUZZ_SECS:-600} ;;
  merge) secs=0 ;;
  *)
    echo "usage: bash fuzz/run.sh ci|long|merge [target...]" >&2
    exit 2
    ;;
esac

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh needs a nightly toolchain and cargo-fuzz:" >&2
  echo "  rustup toolchain install nightly && cargo install cargo-fuzz --locked" >&2
  exit 1
fi

# Optimized (-O: mailroom's crates and the fuzzed code, not the whole dependency tree, see
# Cargo.toml), with debug assertions and overflow checks (-a), 16 codegen units, the address
# sanitizer off. The targets drive safe Rust, where ASan finds little; without it the build
# takes half the time and the targets run 4-5 times as many inputs (see fuzz/README.md).
# FUZZ_SANITIZER=address turns it on.
sanitizer=${FUZZ_SANITIZER:-none}
# The bundled SQLite (in the config target's dependencies) trips ASan's ODR check; harmless.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
# Its own target directory, whatever CARGO_TARGET_DIR says: the main build is not touched.
target_dir=fuzz/target
bin_dir=$target_dir/$triple/release

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
  if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: cargo fuzz list found no targets" >&2
    exit 1
  fi
fi

start=$SECONDS
echo "fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
flags=(--fuzz-dir fuzz --target-dir "$target_dir" -O -a --sanitizer "$sanitizer" --codegen-units 16)
build=(cargo +nightly fuzz build "${flags[@]}")
if [ $# -gt 0 ]; then
  for t in "${targets[@]}"; do "${build[@]}" "$t"; done
else
  "${build[@]}"
fi
echo "fuzz: built in $((SECONDS - start))s"

failed=()
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/$t
  work=$target_dir/corpus/$t
  artifacts=fuzz/artifacts/$t
  log=$target_dir/logs/$t.log
  mkdir -p "$work" "$(dirname "$log")"
  [ -d "$seeds" ] || { echo "fuzz: $t has no seed corpus ($seeds)" >&2; failed+=("$t"); continue; }

  if [ "$profile" = merge ]; then
    # Keeps only the inputs that add coverage over what the seeds already have.
    before=$(find "$seeds" -type f | wc -l)
    "$bin_dir/$t" -merge=1 "$seeds" "$work" >"$log" 2>&1
    echo "fuzz: $t: seeds $before -> $(find "$seeds" -type f | wc -l) files"
    continue
  fi

  mkdir -p "$artifacts"
  find "$artifacts" -type f | sort >"$log.before"
  t0=$SECONDS
  # The first corpus directory is the one libFuzzer writes to; the seeds are only read.
  # -timeout: one input taking this long is a hang, reported like a crash.
  set +e
  "$bin_dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$work" "$seeds" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  mapfile -t found < <(find "$artifacts" -type f | sort | comm -13 "$log.before" -)
  rmdir "$artifacts" fuzz/artifacts 2>/dev/null || true # leave no empty directories behind
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc) after $((SECONDS - t0))s; the end of $log:" >&2
    tail -n 40 "$log" >&2
    for a in "${found[@]}"; do
      echo "fuzz: reproduce with: $bin_dir/$t $a" >&2
      echo "fuzz:   (or, building it too: cargo +nightly fuzz run ${flags[*]} $t $a)" >&2
    done
  else
    echo "fuzz: $t ok: ${runs:-?} runs in $((SECONDS - t0))s, $cov, corpus $(find "$work" -type f | wc -l) files"
  fi
done

echo "fuzz: $profile done in $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
