package wire_test

import (
	"testing"

	"github.com/grainchat/grainchat/transport/wire"
)

func BenchmarkDecode_message(b *testing.B) {
	frame := []byte(`{"message":"  Bonjour, je voudrais savoir où en est ma commande 😀  ","conversation_id":17,"client_msg_id":"b7c1e2f0-6a2d-4c1e-9f1b-3d2a5c7e8f90"}`)
	d := wire.Decoder{MaxMessageChars: 4000}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := d.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeedMessageFrame(b *testing.B) {
	m := sampleMessage()
	m.Body = "Bonjour, je voudrais savoir où en est ma commande <n°42> 😀"
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.SeedMessageFrame(m)
	}
}

func BenchmarkMessageFrame(b *testing.B) {
	m := sampleMessage()
	m.Body = "Bonjour, je voudrais savoir où en est ma commande <n°42> 😀"
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.MessageFrame(m)
	}
}
