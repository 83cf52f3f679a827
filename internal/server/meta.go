package server

//go:generate go run ./gencommands -out commands_gen.go

// commandMeta is one command's metadata as redis-server 7.0.15 reports it,
// captured by gencommands: the raw COMMAND INFO entry and COMMAND DOCS pair in
// both protocols, plus the arity and flags the dispatcher checks.
type commandMeta struct {
	Name        string
	Arity       int
	Flags       []string
	Subcommands []subcommandMeta
	// Info2/Info3: the command's COMMAND INFO entry (10 elements);
	// Docs2/Docs3: its name followed by its COMMAND DOCS map.
	Info2, Info3, Docs2, Docs3 string
}

type subcommandMeta struct {
	Name  string // "client|setname"
	Arity int
	Flags []string
}
