# shellcheck shell=bash
# A real headless browser for tests of pages people look at: Debian's chromium. Source it
# (after servers.sh, whose state folder and cleanup it uses), then:
#
#   pc_browser_require          true when chromium is there; otherwise prints "SKIP: ..." and is
#                               false, unless PC_REQUIRE_BROWSER=1, when it fails the test
#   pc_browser_dom URL          prints the DOM after the page's scripts ran (timers included:
#                               virtual time runs PC_BROWSER_BUDGET_MS, default 5000, ahead)
#   pc_browser_screenshot URL FILE [WIDTH,HEIGHT]   writes a PNG of the page (default 1280,900)
#
# Each run gets a fresh profile under $PC_SERVERS_DIR and is bounded by PC_BROWSER_TIMEOUT
# seconds (default 60); nothing is fetched from the network but the URL (no sync, no component
# updates, no QUIC). Chromium's own messages go to $PC_SERVERS_DIR/chromium.log.

PC_BROWSER="${PC_BROWSER:-$(command -v chromium || true)}"

pc_browser_require() {
  [[ -n $PC_BROWSER && -x $PC_BROWSER ]] && return 0
  if [[ ${PC_REQUIRE_BROWSER:-0} == 1 ]]; then
    echo "FAIL: chromium is not installed and PC_REQUIRE_BROWSER=1 (apt-get install chromium)" >&2
    exit 1
  fi
  echo "SKIP: chromium not installed (apt-get install chromium, or PC_BROWSER=/path/to/chromium)"
  return 1
}

# _pc_browser ARGS...: one headless run with a throw-away profile.
_pc_browser() {
  local profile
  profile="$(mktemp -d "$PC_SERVERS_DIR/chromium-XXXXXX")" || return 1
  timeout "${PC_BROWSER_TIMEOUT:-60}" "$PC_BROWSER" --headless --no-sandbox --disable-gpu \
    --disable-quic --no-first-run --no-default-browser-check --disable-background-networking \
    --disable-component-update --disable-sync --disable-extensions --mute-audio \
    --user-data-dir="$profile" "$@" 2>>"$PC_SERVERS_DIR/chromium.log"
  local rc=$?
  rm -rf "$profile"
  return "$rc"
}

pc_browser_dom() {
  _pc_browser --virtual-time-budget="${PC_BROWSER_BUDGET_MS:-5000}" --dump-dom "$1"
}

pc_browser_screenshot() {
  _pc_browser --virtual-time-budget="${PC_BROWSER_BUDGET_MS:-5000}" --hide-scrollbars \
    --window-size="${3:-1280,900}" --screenshot="$2" "$1" >/dev/null
}
