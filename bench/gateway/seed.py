#!/usr/bin/env python3
"""seed.py - bench/gateway's data, made through the public API of API.md.

    seed.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD PRODUCTS USERS OUT_DIR

Logs in as the bootstrap admin, creates PRODUCTS products (POST /v1/products,
stock 1,000,000 each so that no order of the run lacks stock) in the first
category, registers and logs in USERS users, and writes OUT_DIR/products.txt
(one product id a line) and OUT_DIR/tokens.txt (one access token a line).
One keep-alive connection. Any answer but the expected one is a message on
stderr and exit status 1.
"""
import http.client
import json
import sys
import urllib.parse


def main():
    base, email, password, n_products, n_users, out = sys.argv[1:7]
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    def call(method, path, body=None, token=None, want=200):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = "Bearer " + token
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != want:
            sys.exit(f"seed: {method} {path} answered {r.status}, want {want}: {data[:300]!r}")
        return json.loads(data)

    admin = call("POST", "/v1/auth/login", {"email": email, "password": password})["accessToken"]
    category = call("GET", "/v1/categories")["categories"][0]["id"]
    products = []
    for i in range(int(n_products)):
        p = call("POST", "/v1/products", {
            "sku": f"BENCH-{i:05d}",
            "name": f"Bench product {i}",
            "description": "A product of the gateway benchmark: light, sturdy, and always in stock.",
            "price": f"{10 + i % 90}.99",
            "currency": "USD",
            "categoryId": category,
            "imageUrl": f"https://img.example.com/bench/{i}.png",
            "stock": 1000000,
        }, token=admin, want=201)
        products.append(p["id"])
    tokens = []
    for i in range(int(n_users)):
        user = {"email": f"bench-{i}@bench.example", "password": "bench-password-1"}
        call("POST", "/v1/auth/register", dict(user, firstName="Bench", lastName=str(i)), want=201)
        tokens.append(call("POST", "/v1/auth/login", user)["accessToken"])
    with open(f"{out}/products.txt", "w") as f:
        f.write("".join(p + "\n" for p in products))
    with open(f"{out}/tokens.txt", "w") as f:
        f.write("".join(t + "\n" for t in tokens))
    print(len(products))


if __name__ == "__main__":
    main()
