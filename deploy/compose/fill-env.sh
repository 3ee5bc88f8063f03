#!/bin/sh
# Fills the empty secrets of a compose .env file (made from .env.example) with fresh random values, in
# place: passwords of 32 hex digits, SCF_SECRET_KEY a Fernet key. Entries that have a value are kept;
# nothing is printed. Usage: sh deploy/compose/fill-env.sh .env
set -eu
file="${1:?usage: fill-env.sh PATH-TO-.env}"
[ -f "$file" ] || { echo "fill-env: $file does not exist (cp .env.example $file first)" >&2; exit 2; }
umask 077
tmp="$(mktemp "$file.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    SCF_SECRET_KEY=)
      printf 'SCF_SECRET_KEY=%s\n' "$(openssl rand -base64 32 | tr '+/' '-_')" ;;
    *_PASSWORD=)
      printf '%s%s\n' "$line" "$(openssl rand -hex 16)" ;;
    *)
      printf '%s\n' "$line" ;;
  esac
done < "$file" > "$tmp"
mv "$tmp" "$file"
trap - EXIT
echo "fill-env: $file has every secret set" >&2
