package dashboard

import (
	"encoding/json"
	"fmt"

	"github.com/flowd/flowd/geo"
)

// Level is a site's warning level by occupancy against approved capacity.
type Level int

// The levels in rising order.
const (
	LevelNormal Level = iota
	LevelYellow
	LevelOrange
	LevelRed
)

var levelNames = [...]string{"normal", "yellow", "orange", "red"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalJSON writes the level's name.
func (l Level) MarshalJSON() ([]byte, error) { return json.Marshal(l.String()) }

// UnmarshalJSON reads a level's name.
func (l *Level) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	for i, n := range levelNames {
		if n == s {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("unknown level %q", s)
}

// thresholds returns the ratios at which a site enters yellow, orange and red.
func thresholds(s *geo.Site) [4]float64 {
	return [4]float64{0, s.Yellow, s.Orange, s.Red}
}

// nextLevel is the level a site at ratio moves to from cur. It rises as soon
// as the ratio reaches a threshold, but falls from a level only once the
// ratio is hysteresis below that level's threshold, so occupancy hovering
// at a threshold does not flap between two levels.
func nextLevel(cur Level, ratio float64, th [4]float64, hysteresis float64) Level {
	up := LevelNormal
	for l := LevelRed; l > LevelNormal; l-- {
		if ratio >= th[l] {
			up = l
			break
		}
	}
	if up >= cur {
		return up
	}
	for l := cur; l > LevelNormal; l-- {
		if ratio >= th[l]-hysteresis {
			return l
		}
	}
	return LevelNormal
}
