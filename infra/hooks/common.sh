# Shared by the aksfw azd hooks, which source it: `. "$(dirname "$0")/common.sh"`.

# An azd environment value, or $2 when it is not set at all (an empty value stays empty).
env_value() {
    if value=$(azd env get-value "$1" 2>/dev/null); then
        printf '%s' "$value" | tr -d '\r'
    else
        printf '%s' "${2-}"
    fi
}

lower() { tr '[:upper:]' '[:lower:]'; }

# az ARGS... --output tsv, without Windows line ends; fails when az fails.
az_tsv() {
    az_out=$(az "$@" --output tsv) || return
    printf '%s\n' "$az_out" | tr -d '\r'
}
