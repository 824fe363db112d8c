#!/bin/sh
# lab-render.sh — fill a repo template (postfix/*.in, sendmail/*.in) for the lab.
#   lab-render.sh SRC DST
# Every @NAME@ in SRC is replaced by the value of the environment variable NAME;
# a placeholder without a variable is fatal (exit 1, naming it), so a template that
# grows a new placeholder cannot be half-filled silently. Values are taken
# literally (sed metacharacters escaped).
set -eu
src=$1 dst=$2
cp "$src" "$dst.tmp"
for name in $(grep -o '@[A-Z][A-Z0-9_]*@' "$src" | sort -u | tr -d @); do
  eval "isset=\${$name+x}"
  if [ -z "$isset" ]; then echo "lab-render: $src: no value for @$name@ (set \$$name)" >&2; rm -f "$dst.tmp"; exit 1; fi
  eval "val=\$$name"
  esc=$(printf '%s' "$val" | sed 's/[\\&|]/\\&/g')
  sed -i "s|@$name@|$esc|g" "$dst.tmp"
done
mv "$dst.tmp" "$dst"
