# hotreload.bash: bash completion for the hotreload CLI (commands, their options, module names, paths).
# Installed as share/bash-completion/completions/hotreload; try it with: source client/hotreload.bash

# The modules the daemon (or the history, with no daemon) knows, for the state dir and socket on the line.
_hotreload_modules()
{
	local -a global=()
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket | --state-dir) global+=("${COMP_WORDS[i]}" "${COMP_WORDS[i + 1]}") ;;
		esac
	done
	# The table after the MODULE header of `status`; with no daemon, the modules in the history.
	local out
	if out=$("${COMP_WORDS[0]}" "${global[@]}" status 2>/dev/null); then
		printf '%s\n' "$out" | awk 'f && NF { print $1 } /^MODULE/ { f = 1 }'
	else
		"${COMP_WORDS[0]}" "${global[@]}" history -n 0 2>/dev/null | awk 'NR > 1 && NF { print $1 }' | sort -u
	fi
}

_hotreload()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket | --state-dir) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $prev in
	# One name a line, quoted by bash: a path with spaces stays one.
	--socket) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	--state-dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
	-n | --version | --timeout) return ;;
	esac
	case $cmd in
	"")
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--socket --state-dir --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "status history stats show diff build rollback unpin log gc stop wait help" -- "$cur"))
		fi
		;;
	status | gc | stop) COMPREPLY=($(compgen -W "--json --help" -- "$cur")) ;;
	log) COMPREPLY=($(compgen -W "--follow -f --quiet -q --json --help" -- "$cur")) ;;
	history | stats | show | diff | build | rollback | unpin | wait)
		if [[ $cur == -* ]]; then
			local opts="--json --help"
			[[ $cmd == history ]] && opts="-n $opts"
			[[ $cmd == diff ]] && opts="--help"
			[[ $cmd == rollback ]] && opts="--pin --json --help"
			[[ $cmd == wait ]] && opts="--version --timeout --help"
			COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_hotreload_modules)" -- "$cur"))
		fi
		;;
	esac
}
complete -F _hotreload hotreload
