package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/md5" //nolint:gosec // status-go's identicon is defined over MD5; not a security use.
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	colorful "github.com/lucasb-eyer/go-colorful"
)

// Identicon geometry and colour (status-go protocol/identity/identicon, PROTOCOL.md §8.2).
const (
	// IdenticonSize is the width and height of the PNG in pixels.
	IdenticonSize = 50
	// IdenticonGrid is the number of rows and columns of cells.
	IdenticonGrid = 5

	identiconMargin     = 10
	identiconCell       = 6
	identiconSaturation = 0.5
	identiconLightness  = 0.7

	// dataURIPrefix precedes the base64 PNG in DataURI.
	dataURIPrefix = "data:image/png;base64,"
)

// Identicon is the status-go (Status 1.x) identicon of a string, normally a chat key.
type Identicon struct {
	// Digest is MD5 of the ASCII input string.
	Digest [md5.Size]byte
	// Grid[r][c] is true when cell (row r, column c) is coloured: byte
	// Digest[3r + min(c, 4−c)] is even.
	Grid [IdenticonGrid][IdenticonGrid]bool
	// Hue is (Digest[13]+Digest[14]+Digest[15]) / 765 × 360, in degrees.
	Hue float64
	// Color is the fill colour as drawn: go-colorful Hsl(Hue, 0.5, 0.7) converted as
	// image/draw converts it, so it matches status-go's pixels exactly.
	Color color.RGBA
	// PNG is the 50×50 RGBA picture: white background, coloured cell (r, c) a 6×6 square
	// at (10 + 6c, 10 + 6r).
	PNG []byte
}

// NewIdenticon returns the identicon of pub, computed over its chat key string "0x04…" as
// Status does. It fails, wrapping ErrInvalidKey, for a nil key.
func NewIdenticon(pub *ecdsa.PublicKey) (*Identicon, error) {
	if !usable(pub) {
		return nil, fmt.Errorf("make identicon: %w: nil key", ErrInvalidKey)
	}
	return IdenticonFromString(ChatKey(pub))
}

// IdenticonFromString returns the identicon of an arbitrary string (status-go
// identicon.GenerateBase64 takes the string; Status passes the "0x04…" chat key).
func IdenticonFromString(s string) (*Identicon, error) {
	ic := &Identicon{Digest: md5.Sum([]byte(s))} //nolint:gosec // see import
	h := ic.Digest
	for r := range IdenticonGrid {
		for c := range IdenticonGrid {
			ic.Grid[r][c] = h[3*r+min(c, IdenticonGrid-1-c)]%2 == 0
		}
	}
	sum := float64(h[13]) + float64(h[14]) + float64(h[15])
	ic.Hue = sum / 765 * 360
	fill := colorful.Hsl(ic.Hue, identiconSaturation, identiconLightness)

	img := image.NewRGBA(image.Rect(0, 0, IdenticonSize, IdenticonSize))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for r := range IdenticonGrid {
		for c := range IdenticonGrid {
			if !ic.Grid[r][c] {
				continue
			}
			x, y := identiconMargin+identiconCell*c, identiconMargin+identiconCell*r
			cell := image.Rect(x, y, x+identiconCell, y+identiconCell)
			// Draw with the colorful.Color itself, as status-go does, so the 8-bit
			// conversion is image/draw's and the pixels match.
			draw.Draw(img, cell, &image.Uniform{C: fill}, image.Point{}, draw.Src)
		}
	}
	ic.Color = color.RGBAModel.Convert(fill).(color.RGBA)

	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode identicon png: %w", err)
	}
	ic.PNG = buf.Bytes()
	return ic, nil
}

// DataURI returns the PNG as "data:image/png;base64,…", the form status-go returns.
func (ic *Identicon) DataURI() string {
	return dataURIPrefix + base64.StdEncoding.EncodeToString(ic.PNG)
}
