#!/usr/bin/env bash
# Build the real Delphes 3.5.1 from source against CERN ROOT from the PyPI `root` wheel.
#
# Usage: envs/install_delphes.sh VENV PREFIX
#   VENV    the project virtual environment that holds the `root` wheel
#   PREFIX  where Delphes is installed (bin/, lib/, include/, cards/)
# Source: $DELPHES_TARBALL when set (offline copy), else the upstream tag archive.
# Idempotent: does nothing when PREFIX/.built-3.5.1-c<compression>-b<basket>-p<patch digest> exists and the executables run.
set -euo pipefail

VENV=$(cd "$1" && pwd)
PREFIX=$2
VERSION=3.5.1
UPSTREAM_URL="https://github.com/delphes/delphes/archive/refs/tags/${VERSION}.tar.gz"
JOBS=${JOBS:-$(nproc)}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
# ROOT compression of the files the Delphes readers write: 404 = LZ4 level 4 (ROOT's
# algorithm*100 + level). Reading LZ4 is ~4x faster than Delphes' default zlib-1 (imaging
# benchmark) for ~8% more disk. Set DELPHES_COMPRESSION=101 for ROOT's zlib-1.
COMPRESSION=${DELPHES_COMPRESSION:-404}
# Basket size (bytes) of every output branch; Delphes' own is 64000. Bigger baskets mean fewer
# per-basket steps for uproot: reading the imaging branches is ~20% faster with 256000
# (imaging benchmark), for ~17 MB more write buffers in Delphes. Same data, same file contents.
BASKET_BYTES=${DELPHES_BASKET_BYTES:-256000}
# Source patches (envs/delphes-$VERSION-*.patch), applied in name order; each says why. Their
# digest is in the stamp, so a build without them (or with other ones) is rebuilt.
ENVS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATCHES=("$ENVS_DIR"/delphes-"$VERSION"-*.patch)
[[ -e "${PATCHES[0]}" ]] || PATCHES=()
PATCH_DIGEST=$( (( ${#PATCHES[@]} )) && cat "${PATCHES[@]}" | sha256sum | cut -c1-12 || echo none)
STAMP="$PREFIX/.built-$VERSION-c$COMPRESSION-b$BASKET_BYTES-p$PATCH_DIGEST"

if [[ -f "$STAMP" && -x "$PREFIX/bin/DelphesHepMC2" ]]; then
    echo "[delphes] $VERSION already built in $PREFIX (remove $STAMP to rebuild)"
    exit 0
fi

PY="$VENV/bin/python"
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ROOTDIR="$SITE/ROOT"
[[ -x "$ROOTDIR/bin/root-config" ]] || {
    echo "[delphes] ERROR: no ROOT in $SITE: install the 'root' wheel into $VENV first" >&2; exit 1; }

# Workaround 1: the wheel's root-config and ROOTConfig-targets*.cmake refer to a
# 'mock_site_packages/ROOT' prefix that does not exist; point it at the real one.
[[ -e "$ROOTDIR/mock_site_packages" ]] || { mkdir -p "$ROOTDIR/mock_site_packages"; ln -sfn .. "$ROOTDIR/mock_site_packages/ROOT"; }
PYLIB=$(dirname "$SITE")
[[ -e "$PYLIB/mock_site_packages" ]] || ln -sfn "$(basename "$SITE")" "$PYLIB/mock_site_packages"

WORK="$PREFIX/.build"
rm -rf "$WORK"; mkdir -p "$WORK"
TARBALL=${DELPHES_TARBALL:-}
if [[ -n "$TARBALL" ]]; then
    [[ -f "$TARBALL" ]] || { echo "[delphes] ERROR: DELPHES_TARBALL=$TARBALL is not a file" >&2; exit 1; }
    echo "[delphes] source: $TARBALL"
else
    echo "[delphes] source: $UPSTREAM_URL (set DELPHES_TARBALL to build from a local copy)"
    TARBALL="$WORK/delphes-$VERSION.tar.gz"
    curl -fsSL --retry 3 -o "$TARBALL" "$UPSTREAM_URL" || {
        echo "[delphes] ERROR: download failed; set DELPHES_TARBALL to a local delphes-$VERSION.tar.gz" >&2; exit 1; }
fi
echo "[delphes] sha256 $(sha256sum "$TARBALL" | cut -d' ' -f1)"
tar -xzf "$TARBALL" -C "$WORK"
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -iname 'delphes*' | head -1)
[[ -f "$SRC/CMakeLists.txt" ]] || { echo "[delphes] ERROR: $TARBALL has no Delphes source tree" >&2; exit 1; }

for patch_file in "${PATCHES[@]}"; do
    patch -d "$SRC" -p1 --forward --quiet < "$patch_file" || {
        echo "[delphes] ERROR: could not apply $(basename "$patch_file") to the Delphes source" >&2; exit 1; }
    echo "[delphes] applied $(basename "$patch_file")"
done

# Workaround 2: the wheel has no Eve/Geom/RGL/GuiHtml: find ROOT with EG only and leave
# out the event display (display/ and libDelphesDisplay), which the pipeline never uses.
sed -i \
    -e 's/find_package(ROOT REQUIRED COMPONENTS EG Eve Gui GuiHtml)/find_package(ROOT REQUIRED COMPONENTS EG)/' \
    -e 's/^add_subdirectory(display)/# display left out: no Eve in the ROOT wheel/' \
    -e '/^add_library(DelphesDisplay SHARED/,/^)/d' \
    -e '/^target_link_libraries(DelphesDisplay/d' \
    -e 's/install(TARGETS Delphes DelphesDisplay DESTINATION lib)/install(TARGETS Delphes DESTINATION lib)/' \
    "$SRC/CMakeLists.txt"
grep -q 'COMPONENTS EG)' "$SRC/CMakeLists.txt" || { echo "[delphes] ERROR: could not patch CMakeLists.txt" >&2; exit 1; }

# Output compression (see COMPRESSION above): the HepMC/LHEF/ROOT readers open their output
# with ROOT's compiled default; give them an explicit setting instead. Physics untouched.
for reader in DelphesHepMC2 DelphesHepMC3 DelphesLHEF DelphesROOT; do
    sed -i "s|outputFile = TFile::Open(argv\[2\], \"CREATE\");|outputFile = TFile::Open(argv[2], \"CREATE\", \"\", $COMPRESSION);|" \
        "$SRC/readers/$reader.cpp"
    grep -q "\"CREATE\", \"\", $COMPRESSION" "$SRC/readers/$reader.cpp" || {
        echo "[delphes] ERROR: could not set the output compression in readers/$reader.cpp" >&2; exit 1; }
done

sed -i "s|tree->Branch(name, &fData, 64000);|tree->Branch(name, \&fData, $BASKET_BYTES);|" \
    "$SRC/external/ExRootAnalysis/ExRootTreeBranch.cc"
grep -q "tree->Branch(name, &fData, $BASKET_BYTES);" "$SRC/external/ExRootAnalysis/ExRootTreeBranch.cc" || {
    echo "[delphes] ERROR: could not set the basket size in ExRootTreeBranch.cc" >&2; exit 1; }

# Workaround 3: the wheel's bundled libs (root.libs) need each other at link time.
RPATH_LINK="-Wl,-rpath-link,$SITE/root.libs"
start=$(date +%s)
cmake -S "$SRC" -B "$WORK/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DROOT_DIR="$ROOTDIR/cmake" \
    -DCMAKE_DISABLE_FIND_PACKAGE_Pythia8=ON \
    -DCMAKE_EXE_LINKER_FLAGS="$RPATH_LINK" \
    -DCMAKE_SHARED_LINKER_FLAGS="$RPATH_LINK" \
    > "$WORK/cmake.log" 2>&1 || { tail -30 "$WORK/cmake.log" >&2; echo "[delphes] ERROR: cmake failed, log: $WORK/cmake.log" >&2; exit 1; }
echo "[delphes] building with $JOBS jobs (log: $WORK/make.log)"
# Workaround 4: install (the *_rdict.pcm dictionaries must sit next to libDelphes).
make -C "$WORK/build" -j"$JOBS" install > "$WORK/make.log" 2>&1 || {
    tail -30 "$WORK/make.log" >&2; echo "[delphes] ERROR: build failed, log: $WORK/make.log" >&2; exit 1; }
cp -r "$SRC/cards" "$PREFIX/" 2>/dev/null || true
end=$(date +%s)

usage=$("$PREFIX/bin/DelphesHepMC2" 2>&1 || true)
grep -q "Usage" <<< "$usage" || { echo "[delphes] ERROR: $PREFIX/bin/DelphesHepMC2 does not run" >&2; exit 1; }
rm -rf "$WORK"
rm -f "$PREFIX"/.built-*
echo "built $(date -u +%FT%TZ) in $((end - start)) s from $(basename "$TARBALL"), patches: $( (( ${#PATCHES[@]} )) && basename -a "${PATCHES[@]}" | tr '\n' ' ' || echo none), output compression $COMPRESSION, basket $BASKET_BYTES bytes" > "$STAMP"
echo "[delphes] $VERSION built in $((end - start)) s; $(du -sh "$PREFIX" | cut -f1) in $PREFIX"
