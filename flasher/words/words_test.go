package words

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestJoinAnd(t *testing.T) {
	assert.Equal(t, "", JoinAnd(nil))
	assert.Equal(t, "system-part1", JoinAnd([]string{"system-part1"}))
	assert.Equal(t, "the bootloader and system-part1", JoinAnd([]string{"the bootloader", "system-part1"}))
	assert.Equal(t, "a, b and c", JoinAnd([]string{"a", "b", "c"}))
}

func TestCount(t *testing.T) {
	assert.Equal(t, "0 steps", Count(0, "step"))
	assert.Equal(t, "1 module", Count(1, "module"))
	assert.Equal(t, "3 modules", Count(3, "module"))
}

func TestFirstLetter(t *testing.T) {
	assert.Equal(t, "Enter DFU mode", UpperFirst("enter DFU mode"))
	assert.Equal(t, "", UpperFirst(""))
	assert.Equal(t, "the device restarts", LowerFirst("The device restarts"))
	assert.Equal(t, "", LowerFirst(""))
}
