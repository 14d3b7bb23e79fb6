#!/usr/bin/env bash
# Installs pipeline-cli with its man page and shell completions:
#   scripts/install.sh            into /usr/local
#   scripts/install.sh ~/.local   into another prefix
# Builds the release binary first (PIPELINE_BIN=path installs that binary
# instead). Everything is generated from the binary's own flags.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-/usr/local}"
bin="${PIPELINE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked
  bin=target/release/pipeline-cli
fi
install -d "$prefix/bin" "$prefix/share/man/man1" \
  "$prefix/share/bash-completion/completions" \
  "$prefix/share/zsh/site-functions" \
  "$prefix/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$prefix/bin/pipeline-cli"
"$bin" --man-page >"$prefix/share/man/man1/pipeline-cli.1"
"$bin" --completions bash >"$prefix/share/bash-completion/completions/pipeline-cli"
"$bin" --completions zsh >"$prefix/share/zsh/site-functions/_pipeline-cli"
"$bin" --completions fish >"$prefix/share/fish/vendor_completions.d/pipeline-cli.fish"
echo "installed $prefix/bin/pipeline-cli ($("$bin" --version)), its man page and bash, zsh and fish completions"
