package main

import (
	"fmt"
	"image/color"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotRow is one route of the table as the picture shows it: its medians
// and those of the baseline it is compared with (plain reverse_proxy in the
// same process).
type plotRow struct {
	name, base   string
	rps, baseRPS float64
	p99, baseP99 time.Duration
	isBase       bool
}

// plotDPI is the picture's resolution; its size in pixels is plotSize.
const plotDPI = 96

// plotSize is the picture's size in pixels for n routes: two panels side by
// side, a band of height per route.
func plotSize(n int) (w, h int) {
	return 1400, 120 + 44*(max(n, 1)+1)
}

var (
	baseColor  = color.RGBA{R: 150, G: 150, B: 150, A: 255}
	routeColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
)

// writePlot writes a PNG of req/s and p99 per route, next to the table:
// for each route a pair of bars, the route's (blue) and its baseline's
// (grey, plain reverse_proxy in the same process), so every bar is read
// against the plain proxy it was measured next to. Baselines get no pair
// of their own.
func writePlot(path, title string, rows []plotRow) error {
	var shown []plotRow
	for _, r := range rows {
		if !r.isBase {
			shown = append(shown, r)
		}
	}
	if len(shown) == 0 {
		shown = rows
	}
	// horizontal bars are drawn bottom-up: reverse, so the table's first
	// route is on top; the top band stays empty, for the legend
	n := len(shown) + 1
	names := make([]string, n)
	rps, baseRPS := make(plotter.Values, n), make(plotter.Values, n)
	p99, baseP99 := make(plotter.Values, n), make(plotter.Values, n)
	for i, r := range shown {
		j := len(shown) - 1 - i // index n-1, the top, stays empty
		names[j] = r.name
		rps[j], baseRPS[j] = r.rps, r.baseRPS
		p99[j], baseP99[j] = ms(r.p99), ms(r.baseP99)
	}
	left, err := barPanel(title+": throughput", "req/s (higher is better)", names, rps, baseRPS)
	if err != nil {
		return err
	}
	right, err := barPanel("p99 latency", "ms (lower is better)", names, p99, baseP99)
	if err != nil {
		return err
	}
	right.NominalY(make([]string, len(names))...) // the names are on the left panel

	w, h := plotSize(len(shown))
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch/plotDPI, vg.Length(h)*vg.Inch/plotDPI), vgimg.UseDPI(plotDPI))
	dc := draw.New(c)
	// white background: PNG viewers show transparency as black or a grid
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// barPanel is one panel: for each name a pair of horizontal bars, the
// route's and its baseline's.
func barPanel(title, xlabel string, names []string, route, base plotter.Values) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.X.Min = 0
	p.X.Tick.Marker = plot.DefaultTicks{}
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	width := vg.Points(14)
	b, err := plotter.NewBarChart(base, width)
	if err != nil {
		return nil, err
	}
	r, err := plotter.NewBarChart(route, width)
	if err != nil {
		return nil, err
	}
	b.Horizontal, r.Horizontal = true, true
	b.Color, r.Color = baseColor, routeColor
	b.LineStyle.Width, r.LineStyle.Width = 0, 0
	b.Offset, r.Offset = -width/2, width/2
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil // lines through the bars would hide them
	p.Add(grid, b, r)
	p.Legend.Add("plain reverse_proxy (same process)", b)
	p.Legend.Add("route", r)
	p.Legend.Top = true
	p.Legend.Left = false
	p.NominalY(names...)
	top := 0.0
	for i := range route {
		top = max(top, route[i], base[i])
	}
	p.X.Max = top * 1.05
	return p, nil
}
