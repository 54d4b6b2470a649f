#!/bin/sh
# gen-certs.sh DIR - test PKI for the test API server (openssl, EC P-256 keys).
#
#   ca.crt ca.key              the cluster CA
#   server.crt server.key      serving cert for 127.0.0.1, ::1 and localhost, signed by ca
#   client.crt client.key      client cert CN=system:kube-proxy O=system:node-proxier, signed by ca
#   other-ca.crt other-ca.key  an unrelated CA (a client trusting it must refuse the server)
#   other-client.crt other-client.key  a client cert signed by other-ca (the server must refuse it)
set -eu

dir=${1:?usage: gen-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

ca() { # name CN
	key "$1.key"
	openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() { # name ca subject extensions
	key "$1.key"
	openssl req -new -key "$1.key" -out "$1.csr" -subj "$3"
	printf '%s\n' "$4" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
		-out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

ca ca test-apiserver-ca
ca other-ca unrelated-ca
leaf server ca "/CN=kube-apiserver" \
	"subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
leaf client ca "/O=system:node-proxier/CN=system:kube-proxy" \
	"extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
leaf other-client other-ca "/CN=intruder" \
	"extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
chmod 600 ./*.key
