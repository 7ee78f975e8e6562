# Option parsing for recipe scripts, Kaldi-compatible.  Source it, do not run it:
#
#   nj=4; use_gpu=false; config_name=default
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh || exit 1
#   [ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
#
# Rules:
#   --foo-bar VALUE  (or --foo_bar VALUE, or --foo-bar=VALUE) sets the shell variable
#                    foo_bar, which the caller must already have defined (an unknown
#                    option is an error that names it);
#   a variable whose current value is "true" or "false" only accepts true/false;
#   --config FILE    sources FILE before any other option is applied (so the command
#                    line wins over the file, wherever --config appears; several are
#                    sourced in the order given);
#   --help, -h       prints $help_message (stdout) and exits 0;
#   parsing stops at the first argument that is not an option (or after "--"); the
#   remaining arguments are left in the caller's "$@".
# Errors print "<script>: ..." on stderr and exit 1 (the caller exits: it is sourced).
# Safe under "set -euo pipefail"; needs bash 4+.  Internal names start with __po_.

__po_fail() {
  echo "$0: $*" >&2
  exit 1
}

# Pass 1: walk the option region and source the config files, in order.
__po_args=("$@")
__po_i=0
while [ "$__po_i" -lt "${#__po_args[@]}" ]; do
  __po_a=${__po_args[$__po_i]}
  __po_f=
  case "$__po_a" in
    --|--help|-h) break ;;
    --config=*)
      __po_f=${__po_a#--config=}
      __po_i=$((__po_i + 1)) ;;
    --*=*)
      __po_i=$((__po_i + 1)) ;;
    --*)
      [ $((__po_i + 1)) -lt "${#__po_args[@]}" ] || __po_fail "option $__po_a needs a value"
      [ "$__po_a" = "--config" ] && __po_f=${__po_args[$((__po_i + 1))]}
      __po_i=$((__po_i + 2)) ;;
    *) break ;;
  esac
  if [ -n "$__po_f" ]; then
    [ -f "$__po_f" ] && [ -r "$__po_f" ] || __po_fail "cannot read config file '$__po_f' (given with --config)"
    # shellcheck disable=SC1090
    . "$__po_f" || __po_fail "error while sourcing config file '$__po_f'"
  fi
done

# Pass 2: apply the options, shifting them off the caller's arguments.
while [ $# -gt 0 ]; do
  case "$1" in
    --)
      shift
      break ;;
    --help|-h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        echo "$0: no help message available."
      fi
      exit 0 ;;
    --config)
      shift 2 ;;
    --config=*)
      shift ;;
    --*)
      if [[ "$1" == *=* ]]; then
        __po_opt=${1%%=*}
        __po_val=${1#*=}
        __po_n=1
      else
        __po_opt=$1
        [ $# -ge 2 ] || __po_fail "option $1 needs a value"
        __po_val=$2
        __po_n=2
      fi
      __po_name=${__po_opt#--}
      __po_name=${__po_name//-/_}
      [[ "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || __po_fail "invalid option name $__po_opt"
      [[ -v "$__po_name" ]] || __po_fail "invalid option $__po_opt (no variable '$__po_name' is defined in this script)"
      __po_old=${!__po_name}
      if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
        if [ "$__po_val" != true ] && [ "$__po_val" != false ]; then
          __po_fail "option $__po_opt expects \"true\" or \"false\", got '$__po_val'"
        fi
      fi
      printf -v "$__po_name" '%s' "$__po_val" 2>/dev/null || __po_fail "cannot set variable '$__po_name' (option $__po_opt)"
      shift "$__po_n" ;;
    *)
      break ;;
  esac
done

unset -v __po_args __po_i __po_a __po_f __po_opt __po_val __po_n __po_name __po_old
unset -f __po_fail
true
