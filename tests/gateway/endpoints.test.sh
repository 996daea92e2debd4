#!/usr/bin/env bash
# Every row of API.md's endpoint table over HTTP with curl, against pantherad
# on a private PostgreSQL: for each, the success status, the body's fields
# (named as API.md spells them), the headers the contract names, and the
# failures that apply (400 naming the field for an unknown field or a wrong
# type, 401 without a token, 403 for a user on an admin row, 404 for another
# user's resource or an unknown id, 409 / 400 where the contract says so),
# each error in the AIP-193 shape with its ErrorInfo reason where API.md
# names one. Also: an EXPIRED access token (signed with the auth service's
# own key from the data folder, exp in the past) answers 401; a PATCH
# changes only the fields its body has (AIP-134); query parameters under
# both names, paging and the product filters. Password-reset emails are
# caught by a small SMTP sink (python3) to read the token.
#
# Any mismatch with API.md fails with the row's name.
# GW_TIMING=1 prints when each row starts; GW_TRACE, GW_KEEP and GW_CLUSTER
# (the same rows against the local cluster of deploy/local/): lib.sh.
set -u
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "skip: jq is not installed"; exit 77; }
command -v openssl >/dev/null || { echo "skip: openssl is not installed"; exit 77; }
command -v psql >/dev/null || { echo "skip: psql is not installed"; exit 77; }
. tests/gateway/lib.sh

# ---- an SMTP sink: every message to $tmp/mail/<n>.eml ----
mkdir -p "$tmp/mail"
cat >"$tmp/smtp.py" <<'EOF'
import socket, sys, threading
out, portfile = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
open(portfile + ".tmp", "w").write(str(srv.getsockname()[1]))
__import__("os").rename(portfile + ".tmp", portfile)
count = [0]
lock = threading.Lock()
def serve(conn):
    f = conn.makefile("rb")
    say = lambda s: conn.sendall(s.encode() + b"\r\n")
    say("220 sink")
    while True:
        line = f.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb == b"DATA":
            say("354 go on")
            data = []
            for l in f:
                if l in (b".\r\n", b".\n"):
                    break
                data.append(l)
            with lock:
                count[0] += 1
                n = count[0]
            open("%s/%d.eml" % (out, n), "wb").write(b"".join(data))
            say("250 ok")
        elif verb == b"QUIT":
            say("221 bye")
            break
        else:
            say("250 ok")
    conn.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
python3 "$tmp/smtp.py" "$tmp/mail" "$tmp/smtp.port" &
smtp_pid=$!
stop_smtp() { kill "$smtp_pid" 2>/dev/null; wait "$smtp_pid" 2>/dev/null; }
gw_cleanup_hook=stop_smtp
for _ in $(seq 1 50); do [ -f "$tmp/smtp.port" ] && break; sleep 0.1; done
[ -f "$tmp/smtp.port" ] || fail "the SMTP sink did not start"

admin_email=admin@example.com admin_password=admin-password-1
gw_start PANTHERA_AUTH_RATE_LIMIT_PER_MIN=1000 PANTHERA_RATE_LIMIT_PER_MIN=100000 \
	PANTHERA_BOOTSTRAP_ADMIN_EMAIL=$admin_email PANTHERA_BOOTSTRAP_ADMIN_PASSWORD=$admin_password \
	PANTHERA_SMTP_URL="smtp://127.0.0.1:$(cat "$tmp/smtp.port")"

# ---- helpers ----
row="startup"
rows=0
on() { # ROW: the row of API.md's table the next assertions are about
	row=$1
	[ -z "${GW_TIMING-}" ] || echo "$(date +%s.%N | cut -c1-14) $row"
	rows=$((rows + 1))
}
bad() { fail "[$row] $(head -c 700 <<<"$*")"; }
# want STATUS WHAT: the last call answered STATUS, with an X-Request-Id and,
# when it has a body, as JSON; a 401 also with WWW-Authenticate: Bearer
want() {
	[ "$status" = "$1" ] || bad "$2: got $status (curl exit $curl_rc), want $1: $body"
	local h=${headers,,}
	[[ $h == *$'\nx-request-id: '?* ]] || bad "$2: no X-Request-Id: $headers"
	[ -z "$body" ] || [[ $h == *$'\ncontent-type: application/json'* ]] ||
		bad "$2: a body that is not application/json: $headers"
	# every 401, the gateway's own and a service's UNAUTHENTICATED alike,
	# carries the challenge (RFC 9110 section 11.6.1)
	[ "$1" != 401 ] || [[ $h == *$'\nwww-authenticate: bearer'* ]] ||
		bad "$2: a 401 without WWW-Authenticate: Bearer: $headers"
}
# jqb FILTER: jq -r over the last body
jqb() { jq -r "$1" <<<"$body" 2>/dev/null; }
# has FILTER WHAT: the last body makes FILTER true
has() { jq -e "$1" <<<"$body" >/dev/null 2>&1 || bad "$2: $body"; }
# err STATUS CODE_NAME WHAT: an error answer in the AIP-193 shape
err() {
	want "$1" "$3"
	has ".error.code == $1 and (.error.status | test(\"^($2)$\")) and (.error.message | type == \"string\")
		and (.error.details | type == \"array\")" "$3: not the AIP-193 shape"
	# no SQL, stack or password in an error body (the test's passwords)
	has '[.. | strings | test("(?i)\\b(select|insert|update|delete)\\b.*\\b(from|into|set|where)\\b|sqlstate|\\.c:[0-9]+|correct-horse|new-password|admin-password")]
		| any | not' "$3: SQL, a source line or a password in the error"
}
# reason R: the error carries an ErrorInfo with reason R, domain panthera.dev
reason() {
	has "[.error.details[] | select(.\"@type\" == \"type.googleapis.com/google.rpc.ErrorInfo\"
		and .reason == \"$1\" and .domain == \"panthera.dev\")] | length == 1" "no ErrorInfo reason $1"
}
# field F: a BadRequest detail names field F
field() {
	has "[.error.details[] | select(.\"@type\" == \"type.googleapis.com/google.rpc.BadRequest\")
		| .fieldViolations[] | select(.field == \"$1\")] | length >= 1" "no field violation naming $1"
}
# header REGEX WHAT: a reply header matches (case-insensitive)
header() { grep -qiE "$1" <<<"$headers" || bad "$2: $headers"; }
rfc3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$'
uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
money_re='^[0-9]+\\.[0-9]{2}$'
B400="INVALID_ARGUMENT|FAILED_PRECONDITION|OUT_OF_RANGE" # the 400s of API.md
nobody=00000000-0000-4000-8000-000000000000
# as NAME: curl arguments carrying NAME's access token (tok_NAME)
as() {
	local v="tok_$1"
	auth=(-H "authorization: Bearer ${!v}")
}
# callas NAME METHOD PATH [BODY] [curl args]
callas() {
	as "$1"
	shift
	local m=$1 p=$2 d=${3-}
	shift 3 2>/dev/null || shift $#
	call "$m" "$p" "$d" "${auth[@]}" "$@"
}
register() { # NAME EMAIL: register and log in; sets id_NAME, tok_NAME, refresh_NAME
	call POST /v1/auth/register "{\"email\":\"$2\",\"password\":\"correct-horse-9\",\"firstName\":\"${1^}\",\"lastName\":\"Test\"}"
	want 201 "register $2"
	printf -v "id_$1" '%s' "$(jqb .id)"
	login "$1" "$2" correct-horse-9
}
login() { # NAME EMAIL PASSWORD
	call POST /v1/auth/login "{\"email\":\"$2\",\"password\":\"$3\"}"
	want 200 "login $2"
	printf -v "tok_$1" '%s' "$(jqb .accessToken)"
	printf -v "refresh_$1" '%s' "$(jqb .refreshToken)"
}
# await_order NAME ORDER STATUS: poll until the order has STATUS (5 s)
await_order() {
	for _ in $(seq 1 50); do
		callas "$1" GET "/v1/orders/$2" ""
		[ "$(jqb .status)" = "$3" ] && return 0
		sleep 0.1
	done
	bad "order $2 did not reach $3: $body"
}
# eventually NAME PATH FILTER WHAT: GET PATH (as NAME, or without a token
# for -) until FILTER holds (5 s): for what the event log does after a reply
eventually() {
	for _ in $(seq 1 50); do
		if [ "$1" = - ]; then call GET "$2" ""; else callas "$1" GET "$2" ""; fi
		jq -e "$3" <<<"$body" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	bad "$4: $body"
}
# reset_mail N: the token of the Nth password-reset email (waits 5 s)
reset_mail() {
	local files
	for _ in $(seq 1 50); do
		mapfile -t files < <(grep -l 'Your reset token:' "$tmp"/mail/*.eml 2>/dev/null |
			sed 's|.*/||; s|\.eml$||' | sort -n)
		if [ ${#files[@]} -ge "$1" ]; then
			sed -n 's/^Your reset token: *//p' "$tmp/mail/${files[$1 - 1]}.eml" | tr -d '\r'
			return
		fi
		sleep 0.1
	done
	bad "no password-reset email number $1"
}
# sql STATEMENT: run it on the test's database, print the result unaligned
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$db_url" -c "$1" 2>&1 || bad "psql: $1"; }
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
b64url_decode() {
	local s
	s=$(tr -- '-_' '+/' <<<"$1")
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	base64 -d <<<"$s"
}
today=$(date -u +%F)

# ---- auth ----
on "POST /v1/auth/register"
call POST /v1/auth/register '{"email":"ann@example.com","password":"correct-horse-9","firstName":"Ann","lastName":"Lee"}'
want 201 "register"
id_ann=$(jqb .id)
has ".email == \"ann@example.com\" and .firstName == \"Ann\" and .lastName == \"Lee\"
	and .roles == [\"USER\"] and .status == \"ACTIVE\" and (.id | test(\"$uuid_re\"))
	and (.createdAt | test(\"$rfc3339\")) and (.updatedAt | test(\"$rfc3339\"))" "the User"
has 'has("password") | not' "a password in the reply"
call POST /v1/auth/register '{"email":"ann@example.com","password":"correct-horse-9","firstName":"A","lastName":"L"}'
err 409 ALREADY_EXISTS "a duplicate email"
call POST /v1/auth/register '{"email":"short@example.com","password":"1234567","firstName":"S","lastName":"P"}'
err 400 "$B400" "a 7-character password"
field password
call POST /v1/auth/register "{\"email\":\"long@example.com\",\"password\":\"$(printf 'x%.0s' $(seq 1 129))\",\"firstName\":\"L\",\"lastName\":\"P\"}"
err 400 "$B400" "a 129-character password"
call POST /v1/auth/register '{"email":"not-an-email","password":"correct-horse-9","firstName":"N","lastName":"E"}'
err 400 INVALID_ARGUMENT "an email without @"
field email
call POST /v1/auth/register '{"email":"typed@example.com","password":"correct-horse-9","firstName":5,"lastName":"T"}'
err 400 INVALID_ARGUMENT "a number for firstName"
field firstName
call POST /v1/auth/register '{"email":"snake@example.com","password":"correct-horse-9","first_name":"Sid","last_name":"Snake"}'
want 201 "register with the proto snake_case names"
has '.firstName == "Sid" and .lastName == "Snake"' "snake_case input"

on "POST /v1/auth/login"
call POST /v1/auth/login '{"email":"ann@example.com","password":"correct-horse-9"}'
want 200 "login"
has '.tokenType == "Bearer" and (.expiresIn | type == "number") and .expiresIn > 0
	and (.accessToken | split(".") | length == 3) and (.refreshToken | length > 20)' "the Tokens"
tok_ann=$(jqb .accessToken)
refresh_ann=$(jqb .refreshToken)
call POST /v1/auth/login '{"email":"ann@example.com","password":"wrong-password"}'
err 401 UNAUTHENTICATED "a wrong password"
wrong_pw=$(jqb .error)
call POST /v1/auth/login '{"email":"nobody@example.com","password":"wrong-password"}'
err 401 UNAUTHENTICATED "an unknown email"
[ "$(jqb .error)" = "$wrong_pw" ] || bad "an unknown email and a wrong password answer differently"
call POST /v1/auth/login '{"email":"ann@example.com","password":"correct-horse-9","remember":true}'
err 400 INVALID_ARGUMENT "an unknown field"
field remember

on "POST /v1/auth/refresh"
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh_ann\"}"
want 200 "refresh"
has ".tokenType == \"Bearer\" and .refreshToken != \"$refresh_ann\" and (.accessToken | length > 0)" "rotated Tokens"
refresh2=$(jqb .refreshToken)
tok_ann=$(jqb .accessToken)
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh_ann\"}"
err 401 UNAUTHENTICATED "a reused refresh token"
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh2\"}"
err 401 UNAUTHENTICATED "the session of a reused refresh token is revoked"
call POST /v1/auth/refresh '{"refreshToken":"not-a-token"}'
err 401 UNAUTHENTICATED "an unknown refresh token"
call POST /v1/auth/refresh '{"refreshToken":7}'
err 400 INVALID_ARGUMENT "a number for refreshToken"
field refreshToken
login ann ann@example.com correct-horse-9

on "POST /v1/auth/logout"
login ann2 ann@example.com correct-horse-9 # a second session of ann
call POST /v1/auth/logout "{\"refreshToken\":\"$refresh_ann2\"}"
err 401 UNAUTHENTICATED "logout without a token"
header '^www-authenticate: Bearer' "401 without WWW-Authenticate"
callas ann POST /v1/auth/logout "{\"refreshToken\":\"$refresh_ann2\"}"
want 200 "logout"
has '. == {}' "logout answers {}"
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh_ann2\"}"
err 401 UNAUTHENTICATED "refresh after logout"
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh_ann\"}"
want 200 "the other session still refreshes"
tok_ann=$(jqb .accessToken)
refresh_ann=$(jqb .refreshToken)

on "GET /v1/auth/jwks"
call GET /v1/auth/jwks ""
want 200 "jwks"
kid=$(b64url_decode "$(cut -d. -f1 <<<"$tok_ann")" | jq -r .kid)
has "[.keys[] | select(.kid == \"$kid\" and .kty == \"OKP\" and .crv == \"Ed25519\" and (.x | length == 43))
	| has(\"d\") | not] == [true]" "no public key of the token's kid $kid"
has '[.keys[] | select(.kty == "OKP") | has("y")] | any | not' "an Ed25519 key with a y (RFC 8037: kty, crv, x)"

# ---- cross-cutting: an expired token, signed with the auth service's key ----
on "GET /v1/users/me"
keyfile="$data_dir/keys/$kid.pem"
[ -f "$keyfile" ] || bad "no signing key at $keyfile"
now=$(date +%s)
claims=$(b64url_decode "$(cut -d. -f2 <<<"$tok_ann")" |
	jq -c ".iat = $((now - 7200)) | .nbf = $((now - 7200)) | .exp = $((now - 3600))")
signing_input="$(cut -d. -f1 <<<"$tok_ann").$(printf '%s' "$claims" | b64url)"
printf '%s' "$signing_input" >"$tmp/jwt.in"
openssl pkeyutl -sign -rawin -inkey "$keyfile" -in "$tmp/jwt.in" -out "$tmp/jwt.sig" 2>"$tmp/openssl.err" ||
	bad "openssl cannot sign: $(cat "$tmp/openssl.err")"
expired="$signing_input.$(b64url <"$tmp/jwt.sig")"
# the same claims with a current exp, signed the same way, must pass:
# proves the forgery itself is sound and only exp is wrong
claims=$(jq -c ".exp = $((now + 600))" <<<"$claims")
signing_input="$(cut -d. -f1 <<<"$tok_ann").$(printf '%s' "$claims" | b64url)"
printf '%s' "$signing_input" >"$tmp/jwt.in"
openssl pkeyutl -sign -rawin -inkey "$keyfile" -in "$tmp/jwt.in" -out "$tmp/jwt.sig" 2>/dev/null
tok_annfresh="$signing_input.$(b64url <"$tmp/jwt.sig")"
callas annfresh GET /v1/users/me ""
want 200 "a token signed by the test with the service's key and a valid exp"
tok_annexpired=$expired
callas annexpired GET /v1/users/me ""
err 401 UNAUTHENTICATED "an expired token"
header '^www-authenticate: Bearer .*error="invalid_token"' "expired: no invalid_token challenge"
header 'error_description="[^"]*expired' "expired: the challenge does not say expired"
call GET /v1/users/me ""
err 401 UNAUTHENTICATED "no token"
header '^www-authenticate: Bearer' "401 without WWW-Authenticate"
callas ann GET /v1/users/me ""
want 200 "me"
has ".id == \"$id_ann\" and .email == \"ann@example.com\" and .roles == [\"USER\"] and .status == \"ACTIVE\"" "me"

# the password reset, read from the emails
on "POST /v1/auth/password-reset"
register bob bob@example.com
call POST /v1/auth/password-reset '{"email":"bob@example.com"}'
want 202 "password reset of an account"
has '. == {}' "password reset answers {}"
known_body=$body
call POST /v1/auth/password-reset '{"email":"nobody@example.com"}'
want 202 "password reset of no account"
[ "$body" = "$known_body" ] || bad "the answer tells whether the account exists"
call POST /v1/auth/password-reset '{"email":"bob@example.com","extra":1}'
err 400 INVALID_ARGUMENT "an unknown field"
field extra
reset_token=$(reset_mail 1)
grep -l 'Your reset token' "$tmp"/mail/*.eml | xargs grep -qi '^to: .*bob@example.com' ||
	bad "the reset email is not addressed to bob"
gw_logs | grep -q "$reset_token" && bad "the reset token is in the log"
# valid 30 minutes, stored hashed: the row of its SHA-256
got=$(sql "SELECT extract(epoch FROM expires_at - created_at) FROM auth.password_resets
	WHERE token_hash = sha256(convert_to('$reset_token', 'UTF8'))")
[ "${got%.*}" = 1800 ] || bad "the reset token is not stored as its hash, valid 30 minutes: $got"
call POST /v1/auth/password-reset '{"email":"bob@example.com"}'
want 202 "a second request"
superseded=$reset_token
reset_token=$(reset_mail 2)

on "POST /v1/auth/password-reset:confirm"
call POST /v1/auth/password-reset:confirm '{"token":"no-such-token","newPassword":"new-password-22"}'
err 400 "$B400" "an unknown token"
call POST /v1/auth/password-reset:confirm "{\"token\":\"$superseded\",\"newPassword\":\"new-password-22\"}"
err 400 "$B400" "a token a newer request superseded"
# 30 minutes pass for this token (the test moves its expiry into the past)
sql "UPDATE auth.password_resets SET expires_at = now() - interval '1 second'
	WHERE token_hash = sha256(convert_to('$reset_token', 'UTF8'))" >/dev/null
call POST /v1/auth/password-reset:confirm "{\"token\":\"$reset_token\",\"newPassword\":\"new-password-22\"}"
err 400 "$B400" "an expired token"
call POST /v1/auth/password-reset '{"email":"bob@example.com"}'
reset_token=$(reset_mail 3)
call POST /v1/auth/password-reset:confirm "{\"token\":\"$reset_token\",\"newPassword\":\"short\"}"
err 400 "$B400" "a new password under 8 characters"
call POST /v1/auth/password-reset:confirm "{\"token\":\"$reset_token\",\"newPassword\":\"new-password-22\"}"
want 200 "confirm"
has '. == {}' "confirm answers {}"
call POST /v1/auth/password-reset:confirm "{\"token\":\"$reset_token\",\"newPassword\":\"new-password-33\"}"
err 400 "$B400" "a used token"
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh_bob\"}"
err 401 UNAUTHENTICATED "a session from before the reset"
call POST /v1/auth/login '{"email":"bob@example.com","password":"correct-horse-9"}'
err 401 UNAUTHENTICATED "the old password"
login bob bob@example.com new-password-22

# ---- users ----
register carl carl@example.com
login admin "$admin_email" "$admin_password"
call GET /v1/users/me "" -H "authorization: Bearer $tok_admin"
has '.roles | index("ADMIN") != null' "the bootstrap admin is not ADMIN"

on "GET /v1/users"
callas admin GET "/v1/users?pageSize=2&page=1" ""
want 200 "list users"
has '(.users | length == 2) and .page == 1 and .pageSize == 2 and (.total | tonumber) >= 5
	and (.users[0] | has("email") and has("roles") and has("status"))' "the users page"
total_users=$(jqb '.total | tonumber')
callas admin GET "/v1/users?page_size=2&page=$(((total_users + 1) / 2))" ""
want 200 "the last page, snake_case page_size"
has ".pageSize == 2 and (.users | length) == $((total_users % 2 == 0 ? 2 : 1))" "the last page"
callas admin GET "/v1/users?pageSize=101" ""
err 400 "$B400" "pageSize 101"
callas admin GET "/v1/users?pageSize=ten" ""
err 400 "$B400" "pageSize not a number"
callas ann GET /v1/users ""
err 403 PERMISSION_DENIED "a user on an admin row"
call GET /v1/users ""
err 401 UNAUTHENTICATED "no token"

on "GET /v1/users/{userId}"
callas ann GET "/v1/users/$id_ann" ""
want 200 "my account"
has ".id == \"$id_ann\" and .firstName == \"Ann\"" "my account"
callas bob GET "/v1/users/$id_ann" ""
err 404 NOT_FOUND "another user's account"
callas admin GET "/v1/users/$id_ann" ""
want 200 "an admin reads any account"
callas admin GET "/v1/users/$nobody" ""
err 404 NOT_FOUND "an unknown id"
call GET "/v1/users/$id_ann" ""
err 401 UNAUTHENTICATED "no token"

on "PATCH /v1/users/{userId}"
callas ann PATCH "/v1/users/$id_ann" '{"firstName":"Annie"}'
want 200 "patch firstName"
has '.firstName == "Annie" and .lastName == "Lee"' "AIP-134: only the body's keys change"
callas ann PATCH "/v1/users/$id_ann" '{"last_name":"Leigh"}'
want 200 "patch last_name"
has '.firstName == "Annie" and .lastName == "Leigh"' "AIP-134 with a snake_case key"
callas ann PATCH "/v1/users/$id_ann" '{"firstName":["x"]}'
err 400 INVALID_ARGUMENT "an array for firstName"
field firstName
callas ann PATCH "/v1/users/$id_ann" '{"nickname":"x"}'
err 400 INVALID_ARGUMENT "an unknown field"
field nickname
callas ann PATCH "/v1/users/$id_ann" '{"roles":["ADMIN"]}'
err 403 PERMISSION_DENIED "a user setting their own roles"
callas ann PATCH "/v1/users/$id_ann" '{"email":"annie@example.com"}'
[ "$status" = 400 ] || [ "$status" = 403 ] || bad "PATCH of email (not in {firstName, lastName, roles, status}): got $status: $body"
callas ann GET "/v1/users/$id_ann" ""
has '.email == "ann@example.com"' "a PATCH changed the email"
callas ann GET /v1/users/not-a-uuid ""
[ "$status" = 400 ] || [ "$status" = 404 ] || bad "a malformed id: got $status: $body"
callas bob PATCH "/v1/users/$id_ann" '{"firstName":"Mallory"}'
err 404 NOT_FOUND "another user's account"
callas admin PATCH "/v1/users/$id_carl" '{"roles":["USER","ADMIN"]}'
want 200 "an admin sets roles"
has '(.roles | sort) == ["ADMIN","USER"] and .firstName == "Carl"' "roles set, the rest kept"
callas admin PATCH "/v1/users/$id_carl" '{"roles":["USER"]}'
want 200 "an admin takes a role back"

on "DELETE /v1/users/{userId}"
register dave dave@example.com
callas ann DELETE "/v1/users/$id_dave" ""
err 404 NOT_FOUND "another user's account"
callas dave DELETE "/v1/users/$id_dave" ""
want 200 "deactivate"
has '. == {}' "delete answers {}"
call POST /v1/auth/login '{"email":"dave@example.com","password":"correct-horse-9"}'
err 401 UNAUTHENTICATED "login after deactivation"
call POST /v1/auth/refresh "{\"refreshToken\":\"$refresh_dave\"}"
err 401 UNAUTHENTICATED "refresh after deactivation"
callas admin GET "/v1/users/$id_dave" ""
want 200 "an admin sees the deactivated account"
has '.status == "DEACTIVATED"' "status DEACTIVATED"
callas admin PATCH "/v1/users/$id_dave" '{"status":"ACTIVE"}'
want 200 "an admin sets status"
has '.status == "ACTIVE"' "status ACTIVE again"

on "POST /v1/users/{userId}/addresses"
addr='{"street":"1 Main St","city":"Springfield","state":"IL","zipCode":"62701","country":"US","isDefault":true}'
callas ann POST "/v1/users/$id_ann/addresses" "$addr"
want 201 "add an address"
has ".street == \"1 Main St\" and .city == \"Springfield\" and .state == \"IL\" and .zipCode == \"62701\"
	and .country == \"US\" and .isDefault == true and (.id | test(\"$uuid_re\"))" "the Address"
addr_ann=$(jqb .id)
callas bob POST "/v1/users/$id_ann/addresses" "$addr"
err 404 NOT_FOUND "an address for another user"
callas ann POST "/v1/users/$id_ann/addresses" '{}'
err 400 INVALID_ARGUMENT "an empty address"
callas ann POST "/v1/users/$id_ann/addresses" '{"street":"1 Main St","planet":"Mars"}'
err 400 INVALID_ARGUMENT "an unknown field"
field planet
callas ann POST "/v1/users/$id_ann/addresses" '{"street":"1 Main St","city":"X","zipCode":"1","country":"US","isDefault":"yes"}'
err 400 INVALID_ARGUMENT "a string for isDefault"
field isDefault

on "GET /v1/users/{userId}/addresses"
callas ann GET "/v1/users/$id_ann/addresses" ""
want 200 "list addresses"
has "[.addresses[].id] == [\"$addr_ann\"]" "my addresses"
callas bob GET "/v1/users/$id_ann/addresses" ""
err 404 NOT_FOUND "another user's addresses"
call GET "/v1/users/$id_ann/addresses" ""
err 401 UNAUTHENTICATED "no token"

on "DELETE /v1/users/{userId}/addresses/{addressId}"
callas bob DELETE "/v1/users/$id_ann/addresses/$addr_ann" ""
err 404 NOT_FOUND "another user's address"
callas bob DELETE "/v1/users/$id_bob/addresses/$addr_ann" ""
err 404 NOT_FOUND "another user's address under my own path"
callas ann DELETE "/v1/users/$id_ann/addresses/$addr_ann" ""
want 200 "delete an address"
has '. == {}' "delete answers {}"
callas ann DELETE "/v1/users/$id_ann/addresses/$addr_ann" ""
err 404 NOT_FOUND "a deleted address"
callas ann GET "/v1/users/$id_ann/addresses" ""
has '.addresses | length == 0' "the address is still listed"

# ---- catalog ----
on "GET /v1/categories"
call GET /v1/categories ""
want 200 "list categories"
has "(.categories | length) >= 1 and (.categories[0] | (.id | test(\"$uuid_re\")) and (.name | length > 0))" "the categories"

on "POST /v1/categories"
callas admin POST /v1/categories '{"name":"Test Gear","description":"things for tests"}'
want 201 "create a category"
has ".name == \"Test Gear\" and .description == \"things for tests\" and (.id | test(\"$uuid_re\"))
	and (.createdAt | test(\"$rfc3339\"))" "the Category"
cat_new=$(jqb .id)
callas admin POST /v1/categories '{"name":"Test Gear"}'
err 409 ALREADY_EXISTS "a duplicate name"
callas admin POST /v1/categories "{\"name\":\"Sub Gear\",\"parentId\":\"$cat_new\"}"
want 201 "a child category"
has ".parentId == \"$cat_new\"" "parentId"
callas admin POST /v1/categories "{\"name\":\"Orphan\",\"parentId\":\"$nobody\"}"
[ "$status" = 400 ] || [ "$status" = 404 ] || bad "an unknown parentId: got $status: $body"
callas ann POST /v1/categories '{"name":"Mine"}'
err 403 PERMISSION_DENIED "a user on an admin row"
call POST /v1/categories '{"name":"Mine"}'
err 401 UNAUTHENTICATED "no token"
callas admin POST /v1/categories '{"name":12}'
err 400 INVALID_ARGUMENT "a number for name"
field name
call GET /v1/categories ""
has "[.categories[] | select(.id == \"$cat_new\")] | length == 1" "the new category is not listed"

on "POST /v1/products"
prod_body="{\"sku\":\"TEST-001\",\"name\":\"Zebra test widget\",\"description\":\"a striped quokkaberry gadget\",\"price\":\"12.50\",\"currency\":\"USD\",\"categoryId\":\"$cat_new\",\"imageUrl\":\"https://img.example.com/w.png\",\"stock\":5}"
callas admin POST /v1/products "$prod_body"
want 201 "create a product"
has ".sku == \"TEST-001\" and .name == \"Zebra test widget\" and .price == \"12.50\" and .currency == \"USD\"
	and .categoryId == \"$cat_new\" and .imageUrl == \"https://img.example.com/w.png\" and .stock == 5
	and .isActive == true and (.id | test(\"$uuid_re\")) and (.createdAt | test(\"$rfc3339\"))" "the Product"
p1=$(jqb .id)
callas admin POST /v1/products "$prod_body"
err 409 ALREADY_EXISTS "a duplicate sku"
callas ann POST /v1/products "${prod_body/TEST-001/TEST-009}"
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin POST /v1/products "${prod_body/\"12.50\"/\"twelve\"}"
err 400 INVALID_ARGUMENT "a price that is not a decimal"
field price
callas admin POST /v1/products "${prod_body/\"12.50\"/\"-1.00\"}"
err 400 INVALID_ARGUMENT "a negative price"
field price
callas admin POST /v1/products "${prod_body/\"12.50\"/\"12.505\"}"
err 400 INVALID_ARGUMENT "a price with three decimals"
field price
callas admin POST /v1/products "${prod_body/\"stock\":5/\"stock\":\"many\"}"
err 400 INVALID_ARGUMENT "a string for stock"
field stock
callas admin POST /v1/products "${prod_body/\"stock\":5/\"weight\":5}"
err 400 INVALID_ARGUMENT "an unknown field"
field weight
callas admin POST /v1/products "{\"sku\":\"TEST-002\",\"name\":\"Yak test lamp\",\"description\":\"a quokkaberry lamp\",\"price\":\"99.00\",\"currency\":\"USD\",\"categoryId\":\"$cat_new\",\"imageUrl\":\"\",\"stock\":50}"
want 201 "a second product"
p2=$(jqb .id)
callas admin POST /v1/products "{\"sku\":\"TEST-003\",\"name\":\"Xylophone test\",\"description\":\"music\",\"price\":\"3.00\",\"currency\":\"USD\",\"categoryId\":\"$cat_new\",\"imageUrl\":\"\",\"stock\":50}"
want 201 "a third product"
p3=$(jqb .id)

on "GET /v1/products/{productId}"
call GET "/v1/products/$p1" ""
want 200 "get a product"
has ".id == \"$p1\" and .sku == \"TEST-001\" and .price == \"12.50\" and .stock == 5
	and (.ratingCount // 0) == 0 and (.updatedAt | test(\"$rfc3339\"))" "the Product"
etag=$(sed -n 's/^etag: *//Ip' <<<"$headers")
[ -n "$etag" ] || bad "no ETag: $headers"
header '^cache-control: ' "no Cache-Control"
call GET "/v1/products/$p1" "" -H "if-none-match: $etag"
want 304 "If-None-Match with the current ETag"
call GET "/v1/products/$nobody" ""
err 404 NOT_FOUND "an unknown product"
reason PRODUCT_NOT_FOUND

on "GET /v1/products"
call GET "/v1/products?category=$cat_new&sortBy=price" ""
want 200 "filter by category, sort by price"
has "[.products[].id] == [\"$p3\",\"$p1\",\"$p2\"] and .total == 3 and .page == 1 and .pageSize == 20" "by category, price ascending"
call GET "/v1/products?category=$cat_new&sortBy=-price" ""
has "[.products[].id] == [\"$p2\",\"$p1\",\"$p3\"]" "price descending"
call GET "/v1/products?category=$cat_new&sortBy=name" ""
has "[.products[].id] == [\"$p3\",\"$p2\",\"$p1\"]" "by name"
call GET "/v1/products?category=$cat_new&sortBy=createdAt" ""
has "[.products[].id] == [\"$p1\",\"$p2\",\"$p3\"]" "by createdAt"
call GET "/v1/products?category=$cat_new&sortBy=-createdAt" ""
has "[.products[].id] == [\"$p3\",\"$p2\",\"$p1\"]" "by -createdAt"
call GET "/v1/products?category=$cat_new&minPrice=5&maxPrice=50" ""
has "[.products[].id] == [\"$p1\"] and .total == 1" "minPrice and maxPrice"
call GET "/v1/products?search=quokkaberry" ""
has "([.products[].id] | sort) == ([\"$p1\",\"$p2\"] | sort)" "full-text search over name and description"
call GET "/v1/products?search=zebra" ""
has "[.products[].id] == [\"$p1\"]" "full-text search over the name"
call GET "/v1/products?category=$nobody" ""
want 200 "an unknown category"
has '.products == [] and .total == 0' "an unknown category lists nothing"
call GET "/v1/products?category=$cat_new&sort_by=price&page=2&page_size=2" ""
want 200 "page 2, snake_case names"
has "[.products[].id] == [\"$p2\"] and .total == 3 and .page == 2 and .pageSize == 2" "page 2"
call GET "/v1/products?sortBy=color" ""
err 400 "$B400" "an unknown sortBy"
call GET "/v1/products?pageSize=101" ""
err 400 "$B400" "pageSize 101"
call GET "/v1/products?minPrice=cheap" ""
err 400 "$B400" "a minPrice that is not a number"

on "PATCH /v1/products/{productId}"
callas admin PATCH "/v1/products/$p3" '{"price":"4.25","name":"Xylophone deluxe"}'
want 200 "patch price and name"
has '.price == "4.25" and .name == "Xylophone deluxe" and .description == "music" and .sku == "TEST-003"' "AIP-134 on a product"
call GET "/v1/products/$p3" ""
has '.price == "4.25"' "GET after PATCH shows the old price (stale cache?)"
callas admin PATCH "/v1/products/$p3" '{"sku":"TEST-001"}'
err 409 ALREADY_EXISTS "a PATCH to a taken sku"
callas admin PATCH "/v1/products/$p3" '{"stock":9}'
err 400 INVALID_ARGUMENT "stock in a product PATCH"
field stock
callas admin PATCH "/v1/products/$p3" '{"price":4.25}'
err 400 INVALID_ARGUMENT "a number for price"
field price
callas ann PATCH "/v1/products/$p3" '{"name":"mine"}'
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin PATCH "/v1/products/$nobody" '{"name":"x"}'
err 404 NOT_FOUND "an unknown product"

on "DELETE /v1/products/{productId}"
callas ann DELETE "/v1/products/$p3" ""
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin DELETE "/v1/products/$p3" ""
want 200 "delete a product"
has '. == {}' "delete answers {}"
call GET "/v1/products/$p3" ""
err 404 NOT_FOUND "a deleted product"
call GET "/v1/products?category=$cat_new" ""
has "[.products[].id | select(. == \"$p3\")] == [] and .total == 2" "a deleted product is listed"
callas admin DELETE "/v1/products/$nobody" ""
err 404 NOT_FOUND "an unknown product"

on "PUT /v1/inventory/{productId}"
callas admin PUT "/v1/inventory/$p1" '{"available":7}'
want 200 "set stock"
has ".productId == \"$p1\" and .available == 7 and .reserved == 0" "the stock"
call GET "/v1/products/$p1" "" -H "if-none-match: $etag"
want 200 "If-None-Match with the ETag from before the stock changed"
has '.stock == 7' "the product's stock after PUT"
[ "$(sed -n 's/^etag: *//Ip' <<<"$headers")" != "$etag" ] || bad "the same ETag after the stock changed"
callas ann PUT "/v1/inventory/$p1" '{"available":70}'
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin PUT "/v1/inventory/$p1" '{"available":-1}'
err 400 "$B400" "negative stock"
callas admin PUT "/v1/inventory/$p1" '{"available":"lots"}'
err 400 INVALID_ARGUMENT "a string for available"
field available
callas admin PUT "/v1/inventory/$nobody" '{"available":1}'
err 404 NOT_FOUND "an unknown product"
reason PRODUCT_NOT_FOUND

# ---- cart ----
on "GET /v1/cart"
callas ann GET /v1/cart ""
want 200 "an empty cart"
has ".userId == \"$id_ann\" and .items == [] and (.subtotal == \"0.00\" or .subtotal == null)" "the empty Cart"
call GET /v1/cart ""
err 401 UNAUTHENTICATED "no token"

on "POST /v1/cart/items"
callas ann POST /v1/cart/items "{\"productId\":\"$p1\",\"quantity\":2}"
want 200 "add to the cart"
callas ann POST /v1/cart/items "{\"productId\":\"$p1\",\"quantity\":1}"
want 200 "add to the same line"
has ".userId == \"$id_ann\" and (.items | length == 1) and .items[0].productId == \"$p1\" and .items[0].quantity == 3
	and .items[0].name == \"Zebra test widget\" and .items[0].unitPrice == \"12.50\" and .items[0].lineTotal == \"37.50\"
	and .subtotal == \"37.50\" and .currency == \"USD\" and (.updatedAt | test(\"$rfc3339\"))" "the Cart"
callas ann POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":1,\"unitPrice\":\"0.01\"}"
err 400 INVALID_ARGUMENT "a price sent by the client"
field unitPrice
callas ann POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":0}"
err 400 "$B400" "quantity 0"
callas ann POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":\"two\"}"
err 400 INVALID_ARGUMENT "a string for quantity"
field quantity
callas ann POST /v1/cart/items "{\"productId\":\"$nobody\",\"quantity\":1}"
err 404 NOT_FOUND "an unknown product"
callas ann POST /v1/cart/items "{\"productId\":\"$p3\",\"quantity\":1}"
err 404 NOT_FOUND "a deleted product"
call POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":1}"
err 401 UNAUTHENTICATED "no token"
callas ann POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":1}"
want 200 "a second line"
has '.subtotal == "136.50" and (.items | length == 2)' "two lines"

on "PATCH /v1/cart/items/{productId}"
callas ann PATCH "/v1/cart/items/$p1" '{"quantity":5}'
want 200 "set a quantity"
has "[.items[] | select(.productId == \"$p1\") | .quantity, .lineTotal] == [5, \"62.50\"] and .subtotal == \"161.50\"" "quantity 5"
callas ann PATCH "/v1/cart/items/$p2" '{"quantity":0}'
want 200 "quantity 0"
has "[.items[].productId] == [\"$p1\"]" "quantity 0 removes the line"
callas ann PATCH "/v1/cart/items/$p2" '{"quantity":1}'
err 404 NOT_FOUND "a product not in the cart"
callas ann PATCH "/v1/cart/items/$p1" '{"quantity":-1}'
err 400 "$B400" "a negative quantity"
callas ann PATCH "/v1/cart/items/$p1" '{"qty":1}'
err 400 INVALID_ARGUMENT "an unknown field"
field qty

on "DELETE /v1/cart/items/{productId}"
callas ann POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":1}"
callas ann DELETE "/v1/cart/items/$p2" ""
want 200 "remove a line"
has "[.items[].productId] == [\"$p1\"] and .subtotal == \"62.50\"" "the line is gone"
callas ann DELETE "/v1/cart/items/$p2" ""
err 404 NOT_FOUND "a product not in the cart"
call DELETE "/v1/cart/items/$p1" ""
err 401 UNAUTHENTICATED "no token"

on "DELETE /v1/cart"
callas bob POST /v1/cart/items "{\"productId\":\"$p2\",\"quantity\":1}"
callas bob DELETE /v1/cart ""
want 200 "empty the cart"
has ".userId == \"$id_bob\" and .items == []" "an empty Cart"
callas ann GET /v1/cart ""
has '.items | length == 1' "emptying bob's cart touched ann's"
call DELETE /v1/cart ""
err 401 UNAUTHENTICATED "no token"

# ---- orders ----
ship='"shippingAddress":{"street":"1 Main St","city":"Springfield","state":"IL","zipCode":"62701","country":"US"}'
on "POST /v1/orders"
callas ann POST /v1/orders "{$ship,\"paymentMethodId\":\"pm_card_visa\"}"
want 201 "check out the cart"
has ".userId == \"$id_ann\" and (.status == \"PENDING_PAYMENT\" or .status == \"PAID\") and (.id | test(\"$uuid_re\"))
	and [.items[] | .productId, .sku, .name, .quantity, .unitPrice, .lineTotal] == [\"$p1\", \"TEST-001\", \"Zebra test widget\", 5, \"12.50\", \"62.50\"]
	and .subtotal == \"62.50\" and .totalAmount == \"62.50\" and .currency == \"USD\"
	and .shippingAddress == {\"street\":\"1 Main St\",\"city\":\"Springfield\",\"state\":\"IL\",\"zipCode\":\"62701\",\"country\":\"US\"}
	and (.createdAt | test(\"$rfc3339\"))" "the Order"
o_cart=$(jqb .id)
callas ann GET /v1/cart ""
has '.items == []' "the cart was not emptied by its checkout"
await_order ann "$o_cart" PAID
has '(.paymentId | test("'"$uuid_re"'"))' "a PAID order without paymentId"
callas ann POST /v1/orders "{\"items\":[{\"productId\":\"$p1\",\"quantity\":3}],$ship,\"paymentMethodId\":\"pm_card_visa\"}"
err 400 "$B400" "more than the stock (2 left)"
reason INSUFFICIENT_STOCK
callas ann POST /v1/orders "{\"items\":[{\"productId\":\"$p1\",\"quantity\":1,\"unitPrice\":\"0.01\"}],$ship,\"paymentMethodId\":\"pm_card_visa\"}"
err 400 INVALID_ARGUMENT "a price sent by the client"
callas ann POST /v1/orders "{\"items\":[{\"productId\":\"$p1\",\"quantity\":1}],$ship,\"paymentMethodId\":\"pm_card_visa\"}" -H 'idempotency-key: shared-key'
want 201 "an order of the items given"
o_visa=$(jqb .id)
callas ann POST /v1/orders "{\"items\":[{\"productId\":\"$p1\",\"quantity\":1}],$ship,\"paymentMethodId\":\"pm_card_visa\"}" -H 'idempotency-key: shared-key'
want 201 "the same Idempotency-Key again"
[ "$(jqb .id)" = "$o_visa" ] || bad "the same Idempotency-Key made another order"
callas bob POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":1}],$ship,\"paymentMethodId\":\"pm_card_declined\"}" -H 'idempotency-key: shared-key'
want 201 "another user's order under the same Idempotency-Key"
[ "$(jqb .id)" != "$o_visa" ] && [ "$(jqb .userId)" = "$id_bob" ] ||
	bad "one user's Idempotency-Key answered another user's order"
await_order bob "$(jqb .id)" PAYMENT_FAILED
callas ann POST /v1/orders "{$ship,\"paymentMethodId\":\"pm_card_visa\"}"
err 400 "$B400" "checking out an empty cart"
callas ann POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":0}],$ship,\"paymentMethodId\":\"pm_card_visa\"}"
err 400 "$B400" "quantity 0"
callas ann POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":1}],\"paymentMethodId\":\"pm_card_visa\"}"
err 400 "$B400" "no shippingAddress"
call POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":1}],$ship,\"paymentMethodId\":\"pm_card_visa\"}"
err 401 UNAUTHENTICATED "no token"
callas bob POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":2}],$ship,\"paymentMethodId\":\"pm_card_declined\"}"
want 201 "an order whose payment fails"
o_declined=$(jqb .id)
await_order bob "$o_declined" PAYMENT_FAILED
pay_declined=$(jqb .paymentId)
eventually admin "/v1/products/$p2" '.stock == 50' "PAYMENT_FAILED did not return the stock"
callas carl POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":1}],$ship,\"paymentMethodId\":\"pm_bogus\"}"
want 201 "an order with an unknown payment method"
await_order carl "$(jqb .id)" PAYMENT_FAILED
callas carl GET "/v1/payments/$(jqb .paymentId)" ""
has '.status == "FAILED" and .failureReason == "invalid_payment_method"' "failureReason invalid_payment_method"
await_order ann "$o_visa" PAID

on "GET /v1/orders/{orderId}"
callas ann GET "/v1/orders/$o_visa" ""
want 200 "my order"
has ".id == \"$o_visa\" and .userId == \"$id_ann\" and .status == \"PAID\" and .totalAmount == \"12.50\"" "the Order"
callas bob GET "/v1/orders/$o_visa" ""
err 404 NOT_FOUND "another user's order"
callas admin GET "/v1/orders/$o_visa" ""
want 200 "an admin reads any order"
callas ann GET "/v1/orders/$nobody" ""
err 404 NOT_FOUND "an unknown order"
call GET "/v1/orders/$o_visa" ""
err 401 UNAUTHENTICATED "no token"

on "GET /v1/users/{userId}/orders"
callas ann GET "/v1/users/$id_ann/orders" ""
want 200 "my orders"
has "[.orders[].id] == [\"$o_visa\",\"$o_cart\"] and .total == 2 and .page == 1 and .pageSize == 20" "newest first"
callas ann GET "/v1/users/$id_ann/orders?pageSize=1&page=2" ""
has "[.orders[].id] == [\"$o_cart\"] and .total == 2 and .page == 2 and .pageSize == 1" "page 2"
callas bob GET "/v1/users/$id_ann/orders" ""
err 404 NOT_FOUND "another user's orders"
callas admin GET "/v1/users/$id_ann/orders" ""
want 200 "an admin lists anyone's orders"

on "POST /v1/payments"
callas ann POST /v1/payments "{\"orderId\":\"$o_declined\",\"paymentMethodId\":\"pm_card_visa\"}"
err 404 NOT_FOUND "paying another user's order"
callas bob POST /v1/payments "{\"orderId\":\"$o_declined\",\"paymentMethodId\":\"pm_card_insufficient_funds\"}" -H 'idempotency-key: pay-1'
want 201 "pay again, insufficient funds"
pay_funds=$(jqb .id)
callas bob POST /v1/payments "{\"orderId\":\"$o_declined\",\"paymentMethodId\":\"pm_card_insufficient_funds\"}" -H 'idempotency-key: pay-1'
[ "$(jqb .id)" = "$pay_funds" ] || bad "the same Idempotency-Key made another payment: $body"
has ".orderId == \"$o_declined\" and .userId == \"$id_bob\" and .amount == \"198.00\" and .currency == \"USD\"
	and (.status == \"PENDING\" or .status == \"FAILED\")" "the Payment"
callas bob POST /v1/payments "{\"orderId\":\"$o_declined\",\"paymentMethodId\":\"pm_card_mastercard\"}"
want 201 "pay again, mastercard"
pay_ok=$(jqb .id)
await_order bob "$o_declined" PAID
o_paid=$o_declined
callas bob POST /v1/payments "{\"orderId\":\"$o_paid\",\"paymentMethodId\":\"pm_card_visa\"}"
[ "$status" = 400 ] || [ "$status" = 409 ] || bad "paying a PAID order: got $status: $body"
callas bob POST /v1/payments "{\"orderId\":\"$o_paid\",\"paymentMethodId\":7}"
err 400 INVALID_ARGUMENT "a number for paymentMethodId"
field paymentMethodId

on "GET /v1/payments/{paymentId}"
callas bob GET "/v1/payments/$pay_declined" ""
want 200 "a failed payment"
has ".id == \"$pay_declined\" and .status == \"FAILED\" and .failureReason == \"card_declined\"
	and .orderId == \"$o_paid\" and (.createdAt | test(\"$rfc3339\"))" "failureReason card_declined"
for _ in $(seq 1 30); do
	callas bob GET "/v1/payments/$pay_funds" ""
	[ "$(jqb .status)" = FAILED ] && break
	sleep 0.1
done
has '.failureReason == "insufficient_funds"' "failureReason insufficient_funds"
callas bob GET "/v1/payments/$pay_ok" ""
has '.status == "SUCCEEDED" and .amount == "198.00"' "the payment that succeeded"
callas ann GET "/v1/payments/$pay_ok" ""
err 404 NOT_FOUND "another user's payment"
callas admin GET "/v1/payments/$pay_ok" ""
want 200 "an admin reads any payment"
callas bob GET "/v1/payments/$nobody" ""
err 404 NOT_FOUND "an unknown payment"

on "POST /v1/orders/{orderId}:cancel"
callas carl POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":4}],$ship,\"paymentMethodId\":\"pm_card_declined\"}"
o_cancel=$(jqb .id)
await_order carl "$o_cancel" PAYMENT_FAILED
callas ann POST "/v1/orders/$o_cancel:cancel" ""
err 404 NOT_FOUND "another user's order"
callas carl POST "/v1/orders/$o_cancel:cancel" ""
want 200 "cancel"
has ".id == \"$o_cancel\" and .status == \"CANCELLED\"" "CANCELLED"
callas carl POST "/v1/orders/$o_cancel:cancel" ""
err 400 "$B400" "cancelling a CANCELLED order"
callas ann POST "/v1/orders/$o_visa:cancel" ""
err 400 "$B400" "cancelling a PAID order"
eventually - "/v1/products/$p2" '.stock == 48' "stock after a cancel (50 - bob's 2 paid)"

on "POST /v1/orders/{orderId}:ship"
callas ann POST "/v1/orders/$o_visa:ship" '{"carrier":"UPS","trackingNumber":"1Z999"}'
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin POST "/v1/orders/$o_cancel:ship" '{"carrier":"UPS","trackingNumber":"1Z999"}'
err 400 "$B400" "shipping a CANCELLED order"
callas admin POST "/v1/orders/$o_visa:ship" '{"carrier":"UPS","tracking":"1Z999"}'
err 400 INVALID_ARGUMENT "an unknown field"
field tracking
callas admin POST "/v1/orders/$o_visa:ship" '{"carrier":"UPS","trackingNumber":"1Z999"}'
want 200 "ship"
has ".status == \"SHIPPED\" and .shipment.carrier == \"UPS\" and .shipment.trackingNumber == \"1Z999\"
	and (.shipment.shippedAt | test(\"$rfc3339\"))" "SHIPPED with its shipment"
callas admin POST "/v1/orders/$nobody:ship" '{"carrier":"UPS","trackingNumber":"1"}'
err 404 NOT_FOUND "an unknown order"

on "POST /v1/orders/{orderId}:deliver"
callas admin POST "/v1/orders/$o_cart:deliver" ""
err 400 "$B400" "delivering a PAID order"
callas ann POST "/v1/orders/$o_visa:deliver" ""
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin POST "/v1/orders/$o_visa:deliver" ""
want 200 "deliver"
has ".status == \"DELIVERED\" and (.shipment.deliveredAt | test(\"$rfc3339\")) and .shipment.carrier == \"UPS\"" "DELIVERED"

on "POST /v1/orders/{orderId}:refund"
callas ann POST "/v1/orders/$o_cart:refund" ""
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin POST "/v1/orders/$o_cancel:refund" ""
err 400 "$B400" "refunding a CANCELLED order"
call GET "/v1/products/$p1" ""
stock_before=$(jqb .stock)
callas admin POST "/v1/orders/$o_cart:refund" ""
want 200 "refund a PAID order"
has '.status == "REFUNDED"' "REFUNDED"
eventually - "/v1/products/$p1" ".stock == $((stock_before + 5))" "the stock of an order that had not shipped returns"
callas admin POST "/v1/orders/$o_visa:refund" ""
want 200 "refund a DELIVERED order"
has '.status == "REFUNDED"' "REFUNDED"
call GET "/v1/products/$p1" ""
has ".stock == $((stock_before + 5))" "the stock of a shipped order came back"
callas admin POST "/v1/orders/$o_cart:refund" ""
err 400 "$B400" "refunding twice"
callas ann GET "/v1/orders/$o_cart" ""
pay_cart=$(jqb .paymentId)
callas ann GET "/v1/payments/$pay_cart" ""
has '.status == "REFUNDED" and .refundedAmount == "62.50"' "the refunded Payment"

# ---- reviews ----
on "POST /v1/products/{productId}/reviews"
callas carl POST "/v1/products/$p2/reviews" '{"rating":5,"title":"great","body":"a fine lamp"}'
err 403 PERMISSION_DENIED "a user whose only order of the product was cancelled"
reason NOT_A_BUYER
callas bob POST "/v1/products/$p2/reviews" '{"rating":6,"title":"wow","body":"too good"}'
err 400 INVALID_ARGUMENT "rating 6"
field rating
callas bob POST "/v1/products/$p2/reviews" '{"rating":"five","title":"wow","body":"x"}'
err 400 INVALID_ARGUMENT "a string for rating"
field rating
call POST "/v1/products/$p2/reviews" '{"rating":4,"title":"ok","body":"x"}'
err 401 UNAUTHENTICATED "no token"
callas bob POST "/v1/products/$nobody/reviews" '{"rating":4,"title":"ok","body":"x"}'
err 404 NOT_FOUND "an unknown product"
callas bob POST "/v1/products/$p2/reviews" '{"rating":4,"title":"Bright","body":"a good lamp"}'
want 201 "a buyer (PAID) reviews"
has ".productId == \"$p2\" and .userId == \"$id_bob\" and .rating == 4 and .title == \"Bright\"
	and .body == \"a good lamp\" and .authorName != null and (.id | test(\"$uuid_re\"))
	and (.createdAt | test(\"$rfc3339\"))" "the Review"
rev_bob=$(jqb .id)
callas bob POST "/v1/products/$p2/reviews" '{"rating":1,"title":"again","body":"x"}'
err 409 ALREADY_EXISTS "a second review"
callas ann POST "/v1/products/$p1/reviews" '{"rating":5,"title":"Stripes","body":"refunded but bought"}'
err 403 PERMISSION_DENIED "a buyer whose orders were all REFUNDED"
reason NOT_A_BUYER
callas admin POST "/v1/orders/$o_paid:ship" '{"carrier":"DHL","trackingNumber":"JD1"}'
want 200 "ship bob's order"
register erin erin@example.com
callas erin POST /v1/orders "{\"items\":[{\"productId\":\"$p2\",\"quantity\":1}],$ship,\"paymentMethodId\":\"pm_card_visa\"}"
await_order erin "$(jqb .id)" PAID
callas erin POST "/v1/products/$p2/reviews" '{"rating":1,"title":"Dim","body":"too dim"}'
want 201 "a second buyer reviews"
rev_erin=$(jqb .id)
eventually - "/v1/products/$p2" '.ratingAverage == "2.5" and .ratingCount == 2' "ratingAverage and ratingCount"

on "GET /v1/products/{productId}/reviews"
call GET "/v1/products/$p2/reviews" ""
want 200 "list reviews"
has "[.reviews[].id] == [\"$rev_erin\",\"$rev_bob\"] and .total == 2 and .page == 1 and .pageSize == 20" "newest first"
call GET "/v1/products/$p2/reviews?pageSize=1&page=2" ""
has "[.reviews[].id] == [\"$rev_bob\"] and .total == 2" "page 2"
call GET "/v1/products/$nobody/reviews" ""
err 404 NOT_FOUND "an unknown product"
call GET "/v1/products/$p2/reviews?pageSize=1000" ""
err 400 "$B400" "pageSize 1000"

on "DELETE /v1/products/{productId}/reviews/{reviewId}"
callas erin DELETE "/v1/products/$p2/reviews/$rev_bob" ""
err 404 NOT_FOUND "another user's review"
callas bob DELETE "/v1/products/$p2/reviews/$rev_bob" ""
want 200 "the author deletes"
has '. == {}' "delete answers {}"
callas admin DELETE "/v1/products/$p2/reviews/$rev_erin" ""
want 200 "an admin moderates"
callas bob DELETE "/v1/products/$p2/reviews/$rev_bob" ""
err 404 NOT_FOUND "a deleted review"
eventually - "/v1/products/$p2" '(.ratingCount // 0) == 0' "ratingCount after the deletes"

# ---- notifications and the report ----
on "GET /v1/users/{userId}/notifications"
callas carl GET "/v1/users/$id_carl/notifications" ""
want 200 "my notifications"
has "(.notifications | length) >= 3 and .total == (.notifications | length) and .page == 1
	and all(.notifications[]; .channel == \"EMAIL\" and .userId == \"$id_carl\" and (.subject | length > 0)
	and (.template | length > 0) and (.createdAt | test(\"$rfc3339\")))
	and ([.notifications[].createdAt] == ([.notifications[].createdAt] | sort | reverse))" "the Notifications, newest first"
callas ann GET "/v1/users/$id_ann/notifications?pageSize=100" ""
has '([.notifications[].template] | unique) == ["order_delivered","order_paid","order_placed","order_refunded","order_shipped"]' "ann's notifications: placed, paid, shipped, delivered, refunded"
callas carl GET "/v1/users/$id_carl/notifications?pageSize=100" ""
has '([.notifications[].template] | unique) == ["order_cancelled","order_payment_failed","order_placed"]' "carl's notifications: placed, payment failed, cancelled"
callas bob GET "/v1/users/$id_bob/notifications?pageSize=100" ""
has '[.notifications[] | select(.body | test("reset token"; "i"))] == []' "the reset email recorded as a notification"
callas ann GET "/v1/users/$id_carl/notifications" ""
err 404 NOT_FOUND "another user's notifications"
callas admin GET "/v1/users/$id_carl/notifications?pageSize=1" ""
want 200 "an admin reads anyone's notifications"
has '(.notifications | length) == 1 and .pageSize == 1' "pageSize 1"

on "GET /v1/reports/sales"
callas admin GET "/v1/reports/sales?from=$today&to=$today" ""
want 200 "the sales report"
has ".from == \"$today\" and .to == \"$today\" and .currency == \"USD\" and (.orderCount | tonumber) >= 1
	and (.revenue | test(\"$money_re\")) and (.days | length == 1) and .days[0].date == \"$today\"
	and (.topProducts | length <= 10) and (.topProducts[0] | has(\"productId\") and has(\"name\") and has(\"quantity\") and has(\"revenue\"))" "the SalesReport"
# paid today: ann 62.50 and 12.50 (both refunded), bob 198.00, erin 99.00
eventually admin "/v1/reports/sales?from=$today&to=$today" '.revenue == "297.00"' "revenue net of refunds"
has ".days == [{\"date\":\"$today\",\"orderCount\":.days[0].orderCount,\"revenue\":\"297.00\"}]
	and .topProducts[0].productId == \"$p2\" and .topProducts[0].revenue == \"297.00\"
	and (.topProducts[0].quantity | tonumber) == 3 and .topProducts[0].name == \"Yak test lamp\"" "days and topProducts"
callas admin GET "/v1/reports/sales?from=2024-01-01&to=2024-12-31" ""
want 200 "366 days"
has '.revenue == "0.00" and .from == "2024-01-01"' "an empty year"
callas ann GET "/v1/reports/sales?from=$today&to=$today" ""
err 403 PERMISSION_DENIED "a user on an admin row"
callas admin GET "/v1/reports/sales?from=$today&to=2020-01-01" ""
err 400 "$B400" "from after to"
callas admin GET "/v1/reports/sales?from=2024-01-01&to=2025-01-02" ""
err 400 "$B400" "367 days"
callas admin GET "/v1/reports/sales?to=$today" ""
err 400 "$B400" "no from"
callas admin GET "/v1/reports/sales?from=yesterday&to=$today" ""
err 400 "$B400" "a date that is not YYYY-MM-DD"

[ "$rows" -eq 42 ] || fail "$rows rows checked, API.md has 42"
gw_stop
echo "endpoints: all $rows rows of API.md, success and failure, over HTTP"
