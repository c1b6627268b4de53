package config

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the work of [Diff]'s longest-common-subsequence
// table; past it the changed middle is shown as removed then added.
const maxDiffCells = 1 << 22

// Diff returns a line diff from a to b: a header naming both versions,
// then every line prefixed by "-" (only in a), "+" (only in b) or " "
// (in both). It returns "" when the data are equal.
func Diff(a, b Value) string {
	if string(a.Data) == string(b.Data) {
		return ""
	}
	x, y := lines(a.Data), lines(b.Data)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s version %d\n+++ %s version %d\n", a.Name, a.Version, b.Name, b.Version)
	// The common head and tail need no table.
	p := 0
	for p < len(x) && p < len(y) && x[p] == y[p] {
		p++
	}
	s := 0
	for s < len(x)-p && s < len(y)-p && x[len(x)-1-s] == y[len(y)-1-s] {
		s++
	}
	for _, l := range x[:p] {
		sb.WriteString(" " + l + "\n")
	}
	middle(&sb, x[p:len(x)-s], y[p:len(y)-s])
	for _, l := range x[len(x)-s:] {
		sb.WriteString(" " + l + "\n")
	}
	return sb.String()
}

// middle writes the diff of x and y, which differ at both ends.
func middle(sb *strings.Builder, x, y []string) {
	if len(x)*len(y) > maxDiffCells {
		for _, l := range x {
			sb.WriteString("-" + l + "\n")
		}
		for _, l := range y {
			sb.WriteString("+" + l + "\n")
		}
		return
	}
	// lcs[i][j] is the length of the longest common subsequence of x[i:]
	// and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			sb.WriteString(" " + x[i] + "\n")
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] > lcs[i+1][j]):
			sb.WriteString("+" + y[j] + "\n")
			j++
		default:
			sb.WriteString("-" + x[i] + "\n")
			i++
		}
	}
}

// lines splits data into lines, without a last empty one after a final
// newline.
func lines(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
