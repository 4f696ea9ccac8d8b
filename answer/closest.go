package answer

// Closest returns the name of known nearest to name by edit distance
// (insertions, deletions, substitutions and swaps of two neighbours, case
// ignored), the earliest on a tie, or "" when known is empty: what an
// error suggests for a misspelt parameter, metric or field.
func Closest(name string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		if d := editDistance(lower(name), lower(k)); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is the edit distance Closest ranks by: insertions, deletions,
// substitutions and swaps of two neighbours, case ignored.
func Distance(a, b string) int { return editDistance(lower(a), lower(b)) }

// DidYouMean returns " (did you mean X?)" for the known name closest to
// name, or "" when there is none.
func DidYouMean(name string, known []string) string {
	if c := Closest(name, known); c != "" {
		return " (did you mean " + c + "?)"
	}
	return ""
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// editDistance is the optimal string alignment distance of a and b.
func editDistance(a, b string) int {
	if len(a) > maxEcho || len(b) > maxEcho {
		// A caller's input is bounded by what an error quotes anyway.
		a, b = cut(a, maxEcho), cut(b, maxEcho)
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
