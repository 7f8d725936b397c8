#!/usr/bin/env bash
# Runs Vigil, Prometheus 3 and VictoriaMetrics one after another on the same workload and
# writes BENCHMARKS.md at the repository root. Usage:
#   benches/compare.sh            # default size (10,000 series x 3h at 15s, ~7.3M samples; under 2 minutes on a quiet machine here, about 10 when busy)
#   benches/compare.sh --quick    # CI smoke size (2,000 series x 1h; about a minute)
# Any other vigil-load compare flag passes through (see `vigil-load compare --help`).
# Installs the peers first with .ci/peers.sh when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export VIGIL_PEERS_DIR=${VIGIL_PEERS_DIR:-$HOME/.cache/vigil-peers}
.ci/peers.sh "$VIGIL_PEERS_DIR" > /dev/null

cargo build --release -p vigil-server --bin vigil
cargo build --release -p vigil-bench --bin vigil-load

# Each server runs fresh on 127.0.0.1 in its own temp data dir and is stopped by its pid.
exec target/release/vigil-load compare \
  --vigil-bin target/release/vigil \
  --peers-bin "$VIGIL_PEERS_DIR/usr/bin" \
  --out BENCHMARKS.md "$@"
