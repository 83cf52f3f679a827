package server

// globMatch reports whether str matches the glob pattern exactly as Redis
// 7.0's stringmatchlen (KEYS, SCAN MATCH, CONFIG GET): * ? [a-z] [^x] and \
// escapes; bytes compare as C's signed char in ranges.
func globMatch(pattern, str []byte) bool {
	skip := false
	return globMatchImpl(pattern, str, &skip)
}

func globMatchImpl(pattern, str []byte, skipLonger *bool) bool {
	at := func(b []byte, i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	p, s := 0, 0
	plen, slen := len(pattern), len(str)
	for plen > 0 && slen > 0 {
		switch pattern[p] {
		case '*':
			for plen > 0 && at(pattern, p+1) == '*' {
				p++
				plen--
			}
			if plen == 1 {
				return true
			}
			for slen > 0 {
				if globMatchImpl(pattern[p+1:p+plen], str[s:s+slen], skipLonger) {
					return true
				}
				if *skipLonger {
					return false
				}
				s++
				slen--
			}
			*skipLonger = true
			return false
		case '?':
			s++
			slen--
		case '[':
			p++
			plen--
			not := at(pattern, p) == '^'
			if not {
				p++
				plen--
			}
			match := false
			for {
				if at(pattern, p) == '\\' && plen >= 2 {
					p++
					plen--
					if at(pattern, p) == str[s] {
						match = true
					}
				} else if at(pattern, p) == ']' {
					break
				} else if plen == 0 {
					p--
					plen++
					break
				} else if plen >= 3 && at(pattern, p+1) == '-' {
					start, end := int(int8(at(pattern, p))), int(int8(at(pattern, p+2)))
					ch := int(int8(str[s]))
					if start > end {
						start, end = end, start
					}
					p += 2
					plen -= 2
					if ch >= start && ch <= end {
						match = true
					}
				} else if at(pattern, p) == str[s] {
					match = true
				}
				p++
				plen--
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s++
			slen--
		case '\\':
			if plen >= 2 {
				p++
				plen--
			}
			fallthrough
		default:
			if at(pattern, p) != str[s] {
				return false
			}
			s++
			slen--
		}
		p++
		plen--
		if slen == 0 {
			for at(pattern, p) == '*' && plen > 0 {
				p++
				plen--
			}
			break
		}
	}
	return plen == 0 && slen == 0
}
