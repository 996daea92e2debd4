#!/usr/bin/env bash
# The client SDK as its users get it: `make install` into a temporary
# prefix, the examples client-sdk/examples/{browse,order} copied out of the
# source tree and built there with their Makefiles (pkg-config panthera and
# nothing else), then run against pantherad on a private PostgreSQL over
# tcp://: browse lists categories and pages of products and reads one;
# order registers, logs in, places an order that settles PAID, gets the same
# order back for the same idempotency key, and sees a declined card settle
# PAYMENT_FAILED (exit 2); a URL nobody serves fails with UNAVAILABLE.
set -u
cd "$(dirname "$0")/.." || exit 1
command -v pkg-config >/dev/null || { echo "skip: pkg-config is not installed"; exit 77; }
. tests/gateway/lib.sh

cc=${CC:-cc}
san=""
[ "${SANITIZE:-0}" != 1 ] || san="-fsanitize=address,undefined -fno-sanitize-recover=all"
prefix=$tmp/sdk
make -s install SANITIZE="${SANITIZE:-0}" BUILD="$build" PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
	fail "make install: $(tail -n 5 "$tmp/install.log")"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags=$(pkg-config --cflags panthera) || fail "pkg-config finds no panthera in $prefix"
for f in $cflags; do
	case $f in -I"$prefix"/*) ;; *) fail "pkg-config --cflags points outside the install: $f" ;; esac
done
for ex in browse order; do
	cp -r "client-sdk/examples/$ex" "$tmp/$ex"
	make -s -C "$tmp/$ex" CC="$cc" CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Werror $san" \
		LDFLAGS="$san" >"$tmp/$ex.build.log" 2>&1 || fail "building $ex: $(cat "$tmp/$ex.build.log")"
done
export LD_LIBRARY_PATH=$prefix/lib
ldd "$tmp/browse/browse" | grep -q "$prefix/lib/libpanthera.so.0" ||
	fail "browse does not load the installed libpanthera.so: $(ldd "$tmp/browse/browse")"

gw_start
url=tcp://127.0.0.1:$rpc_port

# browse: 2 pages of 5
out=$("$tmp/browse/browse" "$url" 5 2 2>"$tmp/err") || fail "browse: $(cat "$tmp/err")"
grep -qE '^category [0-9a-f-]{36} .+' <<<"$out" || fail "browse listed no category: $out"
grep -qE '^page 1 of [0-9]+ \([0-9]+ products\)$' <<<"$out" || fail "browse: no first page: $out"
grep -qE '^page 2 of ' <<<"$out" || fail "browse did not turn the page: $out"
products=$(grep -cE '^product [0-9a-f-]{36} \S+ [0-9]+\.[0-9]{2} [A-Z]{3} stock=[0-9]+ .+' <<<"$out")
[ "$products" -eq 10 ] || fail "browse listed $products products on 2 pages of 5: $out"
[ "$(grep '^product ' <<<"$out" | cut -d' ' -f2 | sort -u | wc -l)" -eq 10 ] ||
	fail "a product on both pages: $out"
first=$(grep -m1 '^product ' <<<"$out" | cut -d' ' -f2)
grep -qE "^get $first .+: [0-9]+\.[0-9]{2} [A-Z]{3}, [0-9]+ in stock$" <<<"$out" ||
	fail "browse did not read back the first product $first: $out"

# order: paid, then the same key again, then a declined card
out=$("$tmp/order/order" "$url" sdk@example.com correct-horse-9 pm_card_visa sdk-order-1 2>"$tmp/err")
rc=$?
[ $rc -eq 0 ] || fail "order exited $rc: $out $(cat "$tmp/err")"
user=$(sed -n 's/^user \([0-9a-f-]\{36\}\)$/\1/p' <<<"$out")
[ -n "$user" ] || fail "order named no user: $out"
order=$(sed -n 's/^order \([0-9a-f-]\{36\}\) placed (key sdk-order-1)$/\1/p' <<<"$out")
[ -n "$order" ] || fail "order placed nothing: $out"
grep -qE "^order $order PAID total [0-9]+\.[0-9]{2} [A-Z]{3}$" <<<"$out" || fail "the order did not settle PAID: $out"
grep -qE '^item .+ 1 x [0-9]+\.[0-9]{2} = [0-9]+\.[0-9]{2} [A-Z]{3}$' <<<"$out" || fail "no order line: $out"
out=$("$tmp/order/order" "$url" sdk@example.com correct-horse-9 pm_card_visa sdk-order-1 2>"$tmp/err") ||
	fail "order, second run: $out $(cat "$tmp/err")"
grep -q "^user $user$" <<<"$out" || fail "logging in again gave another user: $out"
grep -q "^order $order placed (key sdk-order-1)$" <<<"$out" ||
	fail "the same idempotency key placed another order: $out"
out=$("$tmp/order/order" "$url" sdk@example.com correct-horse-9 pm_card_declined 2>"$tmp/err")
rc=$?
[ $rc -eq 2 ] || fail "a declined card: order exited $rc, want 2: $out $(cat "$tmp/err")"
grep -qE '^order [0-9a-f-]{36} PAYMENT_FAILED total ' <<<"$out" || fail "a declined card: $out"
grep -q "^order $order " <<<"$out" && fail "a random idempotency key gave the first order back: $out"
"$tmp/order/order" "$url" sdk@example.com wrong-password-9 >/dev/null 2>"$tmp/err" &&
	fail "order signed in with a wrong password"
grep -q '^order: Login: UNAUTHENTICATED: ' "$tmp/err" || fail "a wrong password: $(cat "$tmp/err")"

# nobody at the URL: a clear error and exit 1
dead=tcp://127.0.0.1:$((rpc_port + 2))
"$tmp/browse/browse" "$dead" >/dev/null 2>"$tmp/err" && fail "browse succeeded against $dead"
grep -q '^browse: ListCategories: UNAVAILABLE: ' "$tmp/err" || fail "browse against nobody: $(cat "$tmp/err")"

gw_stop
echo "sdk: installed into a prefix; browse and order built with pkg-config alone; a product listed and read; an order PAID, idempotent, a declined card PAYMENT_FAILED"
