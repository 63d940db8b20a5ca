#!/bin/sh
# mailmill - ISC licence, see LICENSE
# Make a throw-away CA and server certificates for the TLS tests in DIR:
#   ca.crt            the test CA (the client's ca_file)
#   good.{crt,key}    signed by the CA for localhost, 127.0.0.1 and ::1
#   wrong.{crt,key}   signed by the CA, but only for mail.example.invalid
#   expired.{crt,key} signed by the CA for the right names, already expired
#   self.{crt,key}    self-signed for the right names (not from the CA)
# Nothing here is ever trusted outside the test run that made it.
set -eu
dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"
names="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
    -subj "/CN=mailmill test CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# leaf NAME SAN DAYS: a CA-signed server certificate
leaf() {
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$1" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" "$2" > "$1.ext"
    # -days -1 puts notAfter a day in the past: an expired certificate.
    openssl x509 -req -sha256 -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days "$3" -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
leaf good "$names" 2
leaf wrong "subjectAltName=DNS:mail.example.invalid" 2
leaf expired "$names" -1

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=localhost" \
    -keyout self.key -out self.crt -addext "$names" 2>/dev/null

chmod 600 ./*.key
openssl verify -CAfile ca.crt good.crt >/dev/null
