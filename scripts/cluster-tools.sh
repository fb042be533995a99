#!/usr/bin/env bash
# Build the Kubernetes / Seldon Core components this project runs against
# (kube-apiserver, kubectl, etcd, the Seldon Core operator manager, s2i) from
# module source fetched through the Go module proxy, into a per-machine cache.
# No binary download site is reachable from the project's machines, so every
# binary is compiled here; a cold build takes many minutes on 2 cores, a
# second run with everything present does nothing.
#
# Usage:
#   scripts/cluster-tools.sh               build whatever is missing (logs on stderr)
#   scripts/cluster-tools.sh --print-dir   the same, then print the bin dir on stdout:
#       export PATH="$(scripts/cluster-tools.sh --print-dir):$PATH"
#
# Cache layout (root: $LOANXAI_CLUSTER_TOOLS, else $XDG_CACHE_HOME or ~/.cache
# + /loanxai/cluster-tools):
#   <root>/<name>-<version>/<binary>  one folder per tool and version
#   <root>/bin/<binary>               symlinks to the above: put this dir on PATH
#   <root>/go/{mod,cache}             GOMODCACHE and GOCACHE, reused by every build
#   <root>/versions.txt               what was built, and what each binary says
#   <root>/LICENSES.tsv               licence of each source module
# Needs: go (1.26; etcd v3.5.36's go.mod says go 1.26.0), the Go module proxy
# with its checksum database, flock, and nothing else.
set -euo pipefail

# ---- pinned versions ---------------------------------------------------------
# Same minor/patch as the kind node image (kindest/node:v1.29.4) in scripts/kind-up.sh.
K8S_VERSION=v1.29.4
# The published k8s.io/* staging modules that v1.29.4's ./staging/src folders were cut as.
K8S_STAGING_VERSION=v0.29.4
# Newest 3.5.x the (filtered) proxy serves in full; k8s 1.29 supports etcd 3.5.x.
ETCD_VERSION=v3.5.36
# v1.17.1 (last Apache-2.0 release) is refused by the proxy; v1.16.0 is the newest served.
SELDON_OPERATOR_VERSION=v1.16.0
# Newest s2i release served by the proxy; builds as is.
S2I_VERSION=v1.5.0

K8S_MODULE=k8s.io/kubernetes
ETCD_MODULE=go.etcd.io/etcd/server/v3
SELDON_OPERATOR_MODULE=github.com/seldonio/seldon-core/operator
S2I_MODULE=github.com/openshift/source-to-image

# name|module|version|package (in the module)|binary
TOOLS=(
  "kube-apiserver|$K8S_MODULE|$K8S_VERSION|./cmd/kube-apiserver|kube-apiserver"
  "kubectl|$K8S_MODULE|$K8S_VERSION|./cmd/kubectl|kubectl"
  "etcd|$ETCD_MODULE|$ETCD_VERSION|.|etcd"
  "seldon-manager|$SELDON_OPERATOR_MODULE|$SELDON_OPERATOR_VERSION|.|seldon-manager"
  "s2i|$S2I_MODULE|$S2I_VERSION|./cmd/s2i|s2i"
)

# ---- arguments ---------------------------------------------------------------
PRINT_DIR=0
case "${1:-}" in
  "") ;;
  --print-dir) PRINT_DIR=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 2 ;;
esac

ROOT="${LOANXAI_CLUSTER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/loanxai/cluster-tools}"
BIN_DIR="$ROOT/bin"
START=$SECONDS

log() { printf '[cluster-tools +%ss] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

tool_field() { local IFS='|'; local -a f; read -r -a f <<<"$1"; printf '%s' "${f[$2]}"; }
tool_dir() { printf '%s/%s-%s' "$ROOT" "$(tool_field "$1" 0)" "$(tool_field "$1" 2)"; }
tool_path() { printf '%s/%s' "$(tool_dir "$1")" "$(tool_field "$1" 4)"; }

missing=()
for t in "${TOOLS[@]}"; do [[ -x "$(tool_path "$t")" ]] || missing+=("$t"); done

# ---- index files and symlinks (cheap: done on every run) ---------------------
write_index() {
  mkdir -p "$BIN_DIR"
  local t dir bin tmp_v tmp_l
  tmp_v="$ROOT/.versions.txt.$$"; tmp_l="$ROOT/.LICENSES.tsv.$$"
  printf 'name\tmodule\tversion\tcommit\tgo\tbinary says\n' >"$tmp_v"
  printf 'name\tmodule\tversion\tlicence\n' >"$tmp_l"
  for t in "${TOOLS[@]}"; do
    dir="$(tool_dir "$t")"; bin="$(tool_field "$t" 4)"
    [[ -x "$dir/$bin" ]] || continue
    ln -sfn "../$(basename "$dir")/$bin" "$BIN_DIR/.$bin.$$" && mv -fT "$BIN_DIR/.$bin.$$" "$BIN_DIR/$bin"
    cat "$dir/.version" >>"$tmp_v"
    cat "$dir/.licence" >>"$tmp_l"
  done
  mv -f "$tmp_v" "$ROOT/versions.txt"
  # one row per source module, naming every tool built from it
  awk -F'\t' -v OFS='\t' 'NR == 1 { print; next }
      { k = $2 OFS $3; if (!(k in names)) { order[++n] = k; lic[k] = $4; names[k] = $1 }
        else if (index("," names[k] ",", "," $1 ",") == 0) names[k] = names[k] "," $1 }
      END { for (i = 1; i <= n; i++) print names[order[i]], order[i], lic[order[i]] }' \
    "$tmp_l" >"$tmp_l.2" && mv -f "$tmp_l.2" "$ROOT/LICENSES.tsv" && rm -f "$tmp_l"
}

if ((${#missing[@]} == 0)); then
  write_index
  log "all ${#TOOLS[@]} tools present in $ROOT (nothing to build)"
  ((PRINT_DIR)) && printf '%s\n' "$BIN_DIR"
  exit 0
fi

# ---- build environment -------------------------------------------------------
command -v go >/dev/null || die "go is not installed (Go 1.26 is expected)"
mkdir -p "$ROOT/go/mod" "$ROOT/go/cache" "$ROOT/go/work" "$BIN_DIR"
# One builder at a time per cache (2 cores; two parallel kube-apiserver builds
# would also race on the same output names).
exec 9>"$ROOT/.lock"
flock 9
# Holding the lock, any source copy left here is from a killed run: remove it.
rm -rf "$ROOT"/go/work/src.*

export GOMODCACHE="$ROOT/go/mod" GOCACHE="$ROOT/go/cache"
# -mod=mod: the module zips ship vendor/modules.txt without the vendored code,
#   and the rewritten kubernetes go.mod needs go.sum entries added (checked
#   against the checksum database as usual).
# -modcacherw: lets `rm -rf <root>` remove the module cache.
export GOFLAGS="-mod=mod -modcacherw -buildvcs=false"
# Never switch toolchain on a go.mod `toolchain` line (etcd's asks for a newer
# 1.26.x patch): build with the installed Go, which is what was measured.
export GOTOOLCHAIN=local
# Every binary here is pure Go; upstream release builds use CGO_ENABLED=0 too.
export CGO_ENABLED=0
GO_VERSION="$(go env GOVERSION)"

WORK=""
# shellcheck disable=SC2317,SC2329  # invoked by the EXIT trap
cleanup() {
  [[ -n "$WORK" && -d "$WORK" ]] && rm -rf "$WORK"
  rm -f "$ROOT"/*/.*.tmp.$$ "$BIN_DIR"/.*.$$ "$ROOT"/.*.$$ "$ROOT"/.*.$$.2
  return 0
}
trap cleanup EXIT

# Module cache paths spell upper-case letters as !lower-case (sed's \L: bash has no case-changing replace).
# shellcheck disable=SC2001
escape() { sed 's/[A-Z]/!\L&/g' <<<"$1"; }
mod_dir() { printf '%s/%s@%s' "$GOMODCACHE" "$(escape "$1")" "$(escape "$2")"; }
mod_info() { printf '%s/cache/download/%s/@v/%s.info' "$GOMODCACHE" "$(escape "$1")" "$(escape "$2")"; }

# download MODULE VERSION (exact versions only: the proxy here refuses @v/list
# and many versions)
download() {
  local err
  if ! err="$(cd "$ROOT/go" && go mod download "$1@$2" 2>&1)"; then
    die "cannot download $1@$2: $err"
  fi
  [[ -d "$(mod_dir "$1" "$2")" ]] || die "no source dir for $1@$2 after download"
}

# licence_check NAME MODULE VERSION: fail unless the module's LICENSE is Apache-2.0
LICENCE_ROWS=""
licence_check() {
  local f; f="$(mod_dir "$2" "$3")/LICENSE"
  [[ -f "$f" ]] || die "module $2@$3 ($1): no LICENSE file"
  if grep -q 'Apache License' "$f" && grep -q 'Version 2\.0, January 2004' "$f"; then
    LICENCE_ROWS+="$1"$'\t'"$2"$'\t'"$3"$'\t'"Apache-2.0"$'\n'
  else
    die "module $2@$3 ($1): LICENSE is not Apache-2.0: $(head -c 200 "$f" | tr -s '[:space:]' ' ')"
  fi
}

# gomod_lines GO.MOD -> "Q module version" per require, "R module ./path" per
# replace whose target is a local folder
gomod_lines() {
  awk '
    { sub(/[ \t]*\/\/.*$/, "") }
    /^replace[ \t]*\($/ { blk = "R"; next }
    /^require[ \t]*\($/ { blk = "Q"; next }
    /^\)/ { blk = ""; next }
    /^replace[ \t]/ { sub(/^replace[ \t]+/, ""); emit("R"); next }
    /^require[ \t]/ { sub(/^require[ \t]+/, ""); emit("Q"); next }
    blk != "" && NF { emit(blk) }
    function emit(kind,   i) {
      $0 = $0
      if (kind == "Q") { print "Q", $1, $2; return }
      for (i = 1; i <= NF; i++) if ($i == "=>") break
      if ($(i + 1) ~ /^\.\.?\//) print "R", $1, $(i + 1)
    }' "$1"
}

# prepare_source MODULE VERSION: SRC := a writable copy of the module, its
# local replace directives (folders a module zip lacks) rewritten.
prepare_source() {
  local mod="$1" ver="$2" kind rep target rver lines action
  log "download $mod@$ver"
  download "$mod" "$ver"
  LICENCE_ROWS=""
  licence_check "@NAME@" "$mod" "$ver"
  [[ -n "$WORK" ]] && rm -rf "$WORK"
  WORK="$(mktemp -d "$ROOT/go/work/src.XXXXXX")"
  SRC="$WORK/src"
  cp -r "$(mod_dir "$mod" "$ver")" "$SRC"
  chmod -R u+w "$SRC"
  rm -rf "$SRC/vendor" # a module zip carries vendor/modules.txt but no vendored code
  lines="$(gomod_lines "$SRC/go.mod")"
  while read -r kind rep target; do
    [[ "$kind" == R ]] || continue
    rver="$(awk -v m="$rep" '$1 == "Q" && $2 == m {print $3; exit}' <<<"$lines")"
    if [[ -z "$rver" ]]; then
      # not required by the main module: the replace is unused (e.g.
      # k8s.io/sample-cli-plugin, which the proxy refuses at v0.29.4): drop it
      (cd "$SRC" && go mod edit -dropreplace "$rep"); action="dropped (not required)"
    elif [[ "$rver" == v0.0.0 && "$mod" == "$K8S_MODULE" ]]; then
      # kubernetes requires its staging modules as v0.0.0: use the published ones
      download "$rep" "$K8S_STAGING_VERSION"
      licence_check "@NAME@" "$rep" "$K8S_STAGING_VERSION"
      (cd "$SRC" && go mod edit -replace "$rep=$rep@$K8S_STAGING_VERSION"); action="=> $rep@$K8S_STAGING_VERSION"
    else
      # required at a published version (etcd's sibling modules): drop the
      # replace so that version is used
      (cd "$SRC" && go mod edit -dropreplace "$rep"); action="dropped (uses required $rver)"
    fi
    log "  replace $rep => $target: $action"
  done <<<"$lines"
}

# ldflags NAME VERSION COMMIT RELEASE_TIME -> the -X flags upstream's release build sets
ldflags_for() {
  local name="$1" ver="$2" commit="$3" when="$4" x=() key kv major minor
  case "$name" in
    kube-apiserver|kubectl)
      major="${ver#v}"; major="${major%%.*}"; minor="${ver#v*.}"; minor="${minor%%.*}"
      for kv in "gitVersion=$ver" "gitMajor=$major" "gitMinor=$minor" "gitCommit=$commit" \
                "gitTreeState=clean" "buildDate=$when"; do
        x+=("-X" "k8s.io/component-base/version.$kv" "-X" "k8s.io/client-go/pkg/version.$kv")
      done ;;
    etcd)
      [[ -n "$commit" ]] && x+=("-X" "go.etcd.io/etcd/api/v3/version.GitSHA=${commit:0:7}") ;;
    s2i)
      major="${ver#v}"; major="${major%%.*}"; minor="${ver#v*.}"; minor="${minor%%.*}"
      key=github.com/openshift/source-to-image/pkg/version
      x+=("-X" "$key.versionFromGit=$ver" "-X" "$key.majorFromGit=$major" "-X" "$key.minorFromGit=$minor")
      [[ -n "$commit" ]] && x+=("-X" "$key.commitFromGit=${commit:0:7}") ;;
    seldon-manager) ;; # the operator has no version variable to set
  esac
  printf '%s ' "${x[@]}"
}

# what the binary says about its version, on one line
version_line() {
  local name="$1" bin="$2" out
  case "$name" in
    kube-apiserver) out="$("$bin" --version 2>&1)" ;;
    kubectl) out="$("$bin" version --client 2>&1)" ;;
    etcd) out="$("$bin" --version 2>&1)" ;;
    s2i) out="$("$bin" version 2>&1)" ;;
    seldon-manager) out="no version flag (--help works)"; "$bin" --help >/dev/null 2>&1 || out="no version flag (--help failed)" ;;
  esac
  printf '%s' "$out" | tr '\n' ';' | sed 's/;$//; s/;/; /g'
}

# ---- build -------------------------------------------------------------------
TIMER=()
[[ -x /usr/bin/time ]] && TIMER=(/usr/bin/time -f "[cluster-tools] go build: %e s wall, %M KB peak RSS")

log "root $ROOT; ${#missing[@]} tool(s) to build with $GO_VERSION: $(for t in "${missing[@]}"; do printf '%s ' "$(tool_field "$t" 0)"; done)"
PREPARED=""
for t in "${missing[@]}"; do
  CUR_NAME="$(tool_field "$t" 0)"; mod="$(tool_field "$t" 1)"; ver="$(tool_field "$t" 2)"
  pkg="$(tool_field "$t" 3)"; bin="$(tool_field "$t" 4)"; dir="$(tool_dir "$t")"
  step_start=$SECONDS
  if [[ "$PREPARED" != "$mod@$ver" ]]; then
    prepare_source "$mod" "$ver"
    PREPARED="$mod@$ver"
  fi
  info="$(mod_info "$mod" "$ver")"
  commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$info")"  # empty if the proxy recorded none
  when="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")"        # release time, used as build date
  log "build $CUR_NAME from $mod@$ver ($pkg)"
  mkdir -p "$dir"
  tmp="$dir/.$bin.tmp.$$"
  # -s -w: strip; -buildid=: reproducible; -X: version strings upstream's release builds set.
  tags=""; [[ "$mod" == "$K8S_MODULE" ]] && tags="-tags=selinux,notest" # as hack/lib/golang.sh
  (cd "$SRC" && "${TIMER[@]}" go build -trimpath ${tags:+"$tags"} \
      -ldflags="-s -w -buildid= $(ldflags_for "$CUR_NAME" "$ver" "$commit" "$when")" \
      -o "$tmp" "$pkg") || die "go build of $CUR_NAME ($mod@$ver) failed"
  says="$(version_line "$CUR_NAME" "$tmp")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$CUR_NAME" "$mod" "$ver" "${commit:-unknown}" "$GO_VERSION" "$says" >"$dir/.version"
  printf '%s' "${LICENCE_ROWS//@NAME@/$CUR_NAME}" >"$dir/.licence"
  if [[ "$CUR_NAME" == seldon-manager ]]; then
    # Manifests of the same release, for a local harness: config/ (kustomize
    # sources: RBAC, webhook, manager env) and the rendered CRD from bundle/
    # (config/crd/bases alone is rejected by k8s 1.29 without kustomize
    # patches, and kubectl's kustomize v5 fails on those patches).
    rm -rf "$dir/config" "$dir/crd"; cp -r "$SRC/config" "$dir/config"; mkdir -p "$dir/crd"
    cp "$SRC/bundle/manifests/machinelearning.seldon.io_seldondeployments.yaml" "$dir/crd/"
  fi
  mv -f "$tmp" "$dir/$bin" # last: a binary at its final name means a finished build
  log "done $CUR_NAME in $((SECONDS - step_start)) s: $says"
done

write_index
log "cache: $(du -sh "$ROOT" 2>/dev/null | cut -f1) in $ROOT; bin dir $BIN_DIR"
((PRINT_DIR)) && printf '%s\n' "$BIN_DIR"
exit 0
