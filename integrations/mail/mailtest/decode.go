package mailtest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
)

func decodeQP(data []byte) (string, error) {
	out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data)))
	return string(out), err
}

func decodeBase64(data []byte) (string, error) {
	out, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), ""))
	return string(out), err
}
