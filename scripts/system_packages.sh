#!/usr/bin/env bash
# The Debian/Ubuntu packages the test suite needs, installed when missing. scripts/test.sh runs this first.
#   libsndfile1                 audio I/O (soundfile)
#   chromium                    tests/browser drive it through Playwright (never `playwright install`)
#   festival festvox-kallpc16k  corpus.build_sung_corpus sings the songs (tests/test_data.py), with these voices too
#   festvox-kdlpc16k festvox-itapc16k festvox-italp16k festvox-suopuhe-lj festvox-czech-dita  (corpus.SUNG_VOICES)
#   fluidsynth timgm6mb-soundfont  ... and renders their accompaniment with a General MIDI soundfont
#   dpkg                        `dpkg-deb` unpacks the Debian music packages of `jukebox-nb data`
# A quick check comes first (one dpkg-query call), so a second run costs milliseconds. Missing packages are
# installed with apt-get when run as root; otherwise this prints the command to run and exits 1.
# Off Debian/Ubuntu, install the equivalents yourself and set JUKEBOX_NB_SYSTEM_PACKAGES=skip: the check is skipped, and
# a test that needs a missing tool still fails, naming it (tests/system_tools.py).
set -euo pipefail
PACKAGES=(libsndfile1 chromium festival festvox-kallpc16k festvox-kdlpc16k festvox-itapc16k festvox-italp16k
          festvox-suopuhe-lj festvox-czech-dita fluidsynth timgm6mb-soundfont dpkg)

if [ "${JUKEBOX_NB_SYSTEM_PACKAGES:-}" = skip ]; then
  echo "[system] JUKEBOX_NB_SYSTEM_PACKAGES=skip: not checking the Debian packages (${PACKAGES[*]})" >&2
  exit 0
fi

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "[system] no dpkg-query/apt-get: this is not Debian or Ubuntu. The tests need these (Debian names):" >&2
  echo "[system]   ${PACKAGES[*]}" >&2
  echo "[system] install their equivalents with your package manager (chromium at /usr/bin/chromium), then run again" >&2
  echo "[system] with JUKEBOX_NB_SYSTEM_PACKAGES=skip to skip this check." >&2
  exit 1
fi

missing_packages() {
  local installed p
  installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${PACKAGES[@]}" 2>/dev/null || true) "
  for p in "${PACKAGES[@]}"; do
    [[ "$installed" == *" $p=installed "* ]] || printf '%s ' "$p"
  done
}

missing=$(missing_packages)
[ -z "$missing" ] && exit 0
missing=${missing% }

if [ "$(id -u)" != 0 ]; then
  echo "[system] the tests need Debian packages that are not installed: $missing" >&2
  echo "[system] install them (as root), then run the tests again:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing" >&2
  exit 1
fi

echo "[system] installing $missing (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # $missing is a list of package names
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; }; then
  echo "[system] apt-get could not install: $missing (no network or no such package here?); install them and run again" >&2
  exit 1
fi
missing=$(missing_packages)
if [ -n "$missing" ]; then
  echo "[system] still missing after apt-get: $missing; install them and run again" >&2
  exit 1
fi
echo "[system] done" >&2
