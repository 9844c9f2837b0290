package windows

import "strings"

// QuoteArg quotes one argument so that CommandLineToArgvW and the MSVCRT
// argument parser give it back unchanged: backslashes are literal except
// before a quote, where 2n backslashes + quote mean n backslashes and a
// closing/opening quote, and 2n+1 mean n backslashes and a literal quote.
func QuoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
			continue
		case '"':
			// Double the pending backslashes and escape the quote.
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
		}
		slashes = 0
		b.WriteByte(c)
	}
	// Backslashes before the closing quote must be doubled.
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}

// CommandLine joins args into a CreateProcess command line. The program
// name (args[0]) follows the simpler rule CreateProcess applies to it: it
// is quoted as a whole and may not contain a quote.
func CommandLine(args []string) (string, error) {
	if len(args) == 0 {
		return "", errorf("empty argument list")
	}
	if strings.ContainsRune(args[0], '"') {
		return "", errorf("program name %q contains a double quote, which Windows cannot pass", args[0])
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return "", errorf("argument %q contains a NUL byte", a)
		}
	}
	var b strings.Builder
	if args[0] == "" || strings.ContainsAny(args[0], " \t\n\v") {
		b.WriteString(`"` + args[0] + `"`)
	} else {
		b.WriteString(args[0])
	}
	for _, a := range args[1:] {
		b.WriteByte(' ')
		b.WriteString(QuoteArg(a))
	}
	return b.String(), nil
}
