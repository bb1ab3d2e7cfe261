package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"
)

func TestIdenticon_vector(t *testing.T) {
	for _, v := range loadVectors(t).Keys {
		ic, err := NewIdenticon(mustParse(t, v.ChatKey))
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(ic.Digest[:]); got != v.IdenticonMD5 {
			t.Errorf("MD5 = %s, want %s", got, v.IdenticonMD5)
		}
		if math.Abs(ic.Hue-v.IdenticonHue) > 1e-4 {
			t.Errorf("hue = %.6f, want ≈ %.4f", ic.Hue, v.IdenticonHue)
		}
		if got := gridRows(ic.Grid); strings.Join(got, "/") != strings.Join(v.IdenticonGrid, "/") {
			t.Errorf("grid = %v, want %v", got, v.IdenticonGrid)
		}
		// HSL(216.47°, 0.5, 0.7) = (0.55, 0.6676, 0.85), scaled as image/draw does
		// (uint8(uint32(c×65535+0.5) >> 8)).
		if want := (color.RGBA{R: 140, G: 170, B: 217, A: 255}); ic.Color != want {
			t.Errorf("colour = %v, want %v", ic.Color, want)
		}
		checkPixels(t, ic)

		uri := ic.DataURI()
		enc, ok := strings.CutPrefix(uri, "data:image/png;base64,")
		if !ok {
			t.Fatalf("DataURI %q lacks the data:image/png;base64, prefix", uri[:min(len(uri), 40)])
		}
		if raw, err := base64.StdEncoding.DecodeString(enc); err != nil || !bytes.Equal(raw, ic.PNG) {
			t.Errorf("DataURI does not hold the PNG (decode error %v)", err)
		}
	}
}

func gridRows(g [IdenticonGrid][IdenticonGrid]bool) []string {
	rows := make([]string, 0, IdenticonGrid)
	for _, row := range g {
		var sb strings.Builder
		for _, on := range row {
			if on {
				sb.WriteByte('1')
			} else {
				sb.WriteByte('0')
			}
		}
		rows = append(rows, sb.String())
	}
	return rows
}

// checkPixels decodes the PNG and checks every pixel against the grid.
func checkPixels(t *testing.T, ic *Identicon) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(ic.PNG))
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	if b := img.Bounds(); b != image.Rect(0, 0, IdenticonSize, IdenticonSize) {
		t.Fatalf("PNG bounds %v, want 50×50", b)
	}
	white := color.RGBA{255, 255, 255, 255}
	for y := range IdenticonSize {
		for x := range IdenticonSize {
			want := white
			c, r := (x-10)/6, (y-10)/6
			if x >= 10 && y >= 10 && c < 5 && r < 5 && ic.Grid[r][c] {
				want = ic.Color
			}
			if got := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA); got != want {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}

func TestIdenticon_mirrored(t *testing.T) {
	for _, s := range []string{"", "a", "0x04", "statusgate"} {
		ic, err := IdenticonFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		for r, row := range ic.Grid {
			if row[0] != row[4] || row[1] != row[3] {
				t.Errorf("%q: row %d %v is not mirrored", s, r, row)
			}
		}
		if ic.Hue < 0 || ic.Hue > 360 {
			t.Errorf("%q: hue %v outside [0, 360]", s, ic.Hue)
		}
		checkPixels(t, ic)
	}
}

func TestIdenticon_nilKey(t *testing.T) {
	if _, err := NewIdenticon(nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewIdenticon(nil) error %v, want ErrInvalidKey", err)
	}
}

func BenchmarkIdenticon(b *testing.B) {
	pub := mustParse(b, loadVectors(b).Keys[0].ChatKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewIdenticon(pub); err != nil {
			b.Fatal(err)
		}
	}
}
