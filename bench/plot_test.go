package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWritePlot renders fixed figures and reads the PNG back: its size, and
// bars in both colours (the routes' and their baseline's).
func TestWritePlot(t *testing.T) {
	t.Parallel()
	const plain = "plain reverse_proxy"
	rows := []plotRow{
		{name: plain, base: plain, rps: 9000, p99: 9 * time.Millisecond, baseRPS: 9000, baseP99: 9 * time.Millisecond, isBase: true},
		{name: "erpgate: envelope", base: plain, rps: 8000, p99: 10 * time.Millisecond, baseRPS: 9000, baseP99: 9 * time.Millisecond},
		{name: "erpgate: envelope+auth", base: plain, rps: 7000, p99: 12 * time.Millisecond, baseRPS: 9000, baseP99: 9 * time.Millisecond},
		{name: "full chain (memory)", base: plain, rps: 5000, p99: 20 * time.Millisecond, baseRPS: 9000, baseP99: 9 * time.Millisecond},
	}
	path := filepath.Join(t.TempDir(), "results.png")
	if err := writePlot(path, "test", rows); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	w, h := plotSize(3) // the three routes; the baseline is in each pair
	if got := img.Bounds(); got != image.Rect(0, 0, w, h) {
		t.Fatalf("size %v, want %dx%d", got, w, h)
	}
	counts := map[color.RGBA]int{}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			counts[color.RGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: uint8(a >> 8)}]++
		}
	}
	// each colour covers at least the area of a few bars' ends
	for name, c := range map[string]color.RGBA{"route": routeColor, "baseline": baseColor} {
		if counts[c] < 2000 {
			t.Errorf("%s bars: %d pixels of their colour", name, counts[c])
		}
	}
	if counts[color.RGBA{R: 255, G: 255, B: 255, A: 255}] < w*h/3 {
		t.Errorf("background is not white")
	}
}

func TestWritePlotBadPath(t *testing.T) {
	t.Parallel()
	if err := writePlot(filepath.Join(t.TempDir(), "no", "such", "dir.png"), "x", []plotRow{{name: "a", base: "a", rps: 1, isBase: true}}); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
