package signer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

func BenchmarkAlgorithms(b *testing.B) {
	k, err := GenerateDevelopment(rand.Reader, t0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	msg := make([]byte, 160)
	edSig, mlSig, _ := k.sign(msg)
	b.Run("sign/ed25519", func(b *testing.B) {
		for b.Loop() {
			_, _ = k.edKey.sign(msg)
		}
	})
	b.Run("sign/ml-dsa-65", func(b *testing.B) {
		sig := make([]byte, mldsa65.SignatureSize)
		for b.Loop() {
			_ = mldsa65.SignTo(k.ml, msg, nil, false, sig)
		}
	})
	b.Run("sign/hybrid", func(b *testing.B) {
		for b.Loop() {
			_, _, _ = k.sign(msg)
		}
	})
	b.Run("verify/ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(k.pub.Ed25519, msg, edSig)
		}
	})
	b.Run("verify/ml-dsa-65", func(b *testing.B) {
		for b.Loop() {
			mldsa65.Verify(k.pub.MLDSA65, msg, nil, mlSig)
		}
	})
}

func BenchmarkBatcher(b *testing.B) {
	s := testSigner(b)
	bt := NewBatcher(s, func() (Claims, error) { return claims(), nil }, BatchOptions{Window: time.Millisecond, MaxBatch: 64})
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := bt.Attest(context.Background(), []byte(fmt.Sprint(i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
