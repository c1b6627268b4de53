package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles are the paths of PEM files made by [NewTLSFiles], or by a server
// started with [WithTLS]. They are what a client needs: hand them to
// etcdctl's or lockctl's --cacert, --cert and --key.
type TLSFiles struct {
	// CA is the certificate of the authority that signed both the server's
	// and the client's certificate.
	CA string
	// Cert and Key are a client certificate and its key, valid for a
	// server that requires client certificates ([WithClientCertAuth]).
	Cert, Key string
	// ServerCert and ServerKey are the server's certificate (for 127.0.0.1,
	// ::1 and localhost) and its key.
	ServerCert, ServerKey string
}

// NewTLSFiles makes a new certificate authority in dir and uses it to sign
// a server certificate for 127.0.0.1, ::1 and localhost and a client
// certificate, each with a new ECDSA P-256 key, valid for a day. Nothing is
// checked in: every call makes a new authority, so the files of one call
// are "the wrong CA" and "a client certificate from another CA" for a
// server started with another.
func NewTLSFiles(dir string) (TLSFiles, error) {
	f := TLSFiles{
		CA:         filepath.Join(dir, "ca.pem"),
		Cert:       filepath.Join(dir, "client.pem"),
		Key:        filepath.Join(dir, "client-key.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "etcdtest CA " + now.Format(time.RFC3339Nano)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
	}
	if err := writePEM(f.CA, "CERTIFICATE", caDER); err != nil {
		return TLSFiles{}, err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
	}
	// The server certificate serves for client authentication too: with
	// client-cert-auth, etcd's gateway dials the server with it.
	server := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "etcdtest server"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	// The client's common name is no etcd user: with auth enabled, etcd
	// would take a certificate's CN as the user name of token-less requests.
	client := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "etcdtest client"},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, leaf := range []struct {
		tmpl      *x509.Certificate
		cert, key string
	}{{server, f.ServerCert, f.ServerKey}, {client, f.Cert, f.Key}} {
		leaf.tmpl.NotBefore, leaf.tmpl.NotAfter = ca.NotBefore, ca.NotAfter
		leaf.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf.tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return TLSFiles{}, fmt.Errorf("etcdtest: TLS files: %w", err)
		}
		if err := writePEM(leaf.cert, "CERTIFICATE", der); err != nil {
			return TLSFiles{}, err
		}
		if err := writePEM(leaf.key, "EC PRIVATE KEY", kder); err != nil {
			return TLSFiles{}, err
		}
	}
	return f, nil
}

func writePEM(path, typ string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("etcdtest: TLS files: %w", err)
	}
	return nil
}
