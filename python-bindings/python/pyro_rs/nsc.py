"""Name server control (``python -m pyro_rs.nsc``): Pyro4's ``nsc`` commands, options and
output, on the pyro_rs client."""

import optparse
import os
import warnings

from pyro_rs import errors, naming

COMMANDS = ("register", "remove", "removematching", "list", "listmatching", "lookup",
            "listmeta_all", "listmeta_any", "setmeta", "ping")


def _print_list(resultdict, title=""):
    print(f"--------START LIST {title}")
    for name, (uri, metadata) in sorted(resultdict.items()):
        print(f"{name} --> {uri}")
        if metadata:
            print("    metadata:", metadata)
    print(f"--------END LIST {title}")


def _need(args, count, text):
    if len(args) != count:
        raise SystemExit(text)


def handleCommand(nameserver, options, args):
    """Run one nsc command against a name server proxy; errors are printed as Pyro4 does."""
    command = args[0]

    def run():
        if command == "ping":
            nameserver.ping()
            print("Name server ping ok.")
        elif command == "list":
            if len(args) == 1:
                _print_list(nameserver.list(return_metadata=True))
            else:
                _print_list(nameserver.list(prefix=args[1], return_metadata=True), f"- prefix '{args[1]}'")
        elif command == "listmatching":
            _need(args, 2, "requires one argument: pattern")
            _print_list(nameserver.list(regex=args[1], return_metadata=True), f"- regex '{args[1]}'")
        elif command == "lookup":
            _need(args, 2, "requires one argument: name")
            uri, metadata = nameserver.lookup(args[1], return_metadata=True)
            print(uri)
            if metadata:
                print("metadata:", metadata)
        elif command == "register":
            _need(args, 3, "requires two arguments: name uri")
            nameserver.register(args[1], args[2], safe=True)
            print(f"Registered {args[1]}")
        elif command == "remove":
            _need(args, 2, "requires one argument: name")
            if nameserver.remove(args[1]) > 0:
                print(f"Removed {args[1]}")
            else:
                print("Nothing removed")
        elif command == "removematching":
            _need(args, 2, "requires one argument: pattern")
            sure = input("Potentially removing lots of items from the Name server. Are you sure (y/n)?").strip()
            if sure in ("y", "Y"):
                count = nameserver.remove(regex=args[1])
                print(f"{count} items removed.")
        elif command == "setmeta":
            if len(args) < 2:
                raise SystemExit("requires at least 2 arguments: uri and zero or more meta tags")
            metadata = set(args[2:])
            nameserver.set_metadata(args[1], metadata)
            print("Metadata updated" if metadata else "Metadata cleared")
        elif command in ("listmeta_all", "listmeta_any"):
            if len(args) < 2:
                raise SystemExit("requires at least one metadata tag argument")
            metadata = set(args[1:])
            if command == "listmeta_all":
                found = nameserver.list(metadata_all=metadata, return_metadata=True)
            else:
                found = nameserver.list(metadata_any=metadata, return_metadata=True)
            _print_list(found, " - searched by metadata")

    try:
        run()
    except Exception as x:  # noqa: BLE001 - nsc reports every failure the same way
        print(f"Error: {type(x).__name__} - {x}")


def main(args=None):
    """The command line entry point."""
    usage = ("usage: %prog [options] command [arguments]\nCommands: "
             "register remove removematching lookup list listmatching\n          listmeta_all listmeta_any setmeta ping")
    parser = optparse.OptionParser(usage=usage)
    parser.add_option("-n", "--host", dest="host", help="hostname of the NS")
    parser.add_option("-p", "--port", dest="port", type="int",
                      help="port of the NS (or bc-port if host isn't specified)")
    parser.add_option("-u", "--unixsocket", help="Unix domain socket name of the NS")
    parser.add_option("-k", "--key", help="the HMAC key to use (deprecated)")
    parser.add_option("-v", "--verbose", action="store_true", dest="verbose", help="verbose output")
    options, args = parser.parse_args(args)
    if options.key:
        warnings.warn("using -k to supply HMAC key on the command line is a security problem "
                      "and is deprecated since Pyro 4.72. See the documentation for an alternative.", stacklevel=1)
    if "PYRO_HMAC_KEY" in os.environ:
        if options.key:
            raise SystemExit("error: don't use -k and PYRO_HMAC_KEY at the same time")
        options.key = os.environ["PYRO_HMAC_KEY"]
    if not args or args[0] not in COMMANDS:
        parser.error("invalid or missing command")
    if options.verbose:
        print("Locating name server...")
    if options.unixsocket:
        options.host = "./u:" + options.unixsocket
    try:
        nameserver = naming.locateNS(options.host, options.port, hmac_key=options.key)
    except errors.PyroError as x:
        print(f"Error: {x}")
        return
    if options.verbose:
        print(f"Name server found: {nameserver._pyroUri}")
    handleCommand(nameserver, options, args)
    if options.verbose:
        print("Done.")


if __name__ == "__main__":
    main()
