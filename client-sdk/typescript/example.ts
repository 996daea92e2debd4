/**
 * example.ts - the Panthera REST API through the generated TypeScript client.
 *
 *     node example.js BASE_URL [EMAIL] [PAYMENT_METHOD]
 *
 * Registers EMAIL (default: a fresh address), logs in, lists the products,
 * places an order of the first one in stock with an Idempotency-Key, then
 * reads the order back every 200 ms until it leaves PENDING_PAYMENT (at most
 * 30 s). Prints one record a line ("user <id>", "products <total>",
 * "order <id> placed", "order <id> <STATUS> total <amount> <currency>");
 * exit status 0 when the order is PAID, 2 when it settled otherwise, 1 on
 * any error, with the API's error on stderr.
 *
 * Built by tests/sdk-ts.test.sh against build/sdk-ts (make sdk-ts), as a
 * project of yours would use it: `import ... from "panthera-client"`.
 */
import { randomUUID } from "node:crypto";
import { createPantheraClient } from "panthera-client";
import type { ApiError } from "panthera-client";

const [baseUrl, emailArg, paymentArg] = process.argv.slice(2);
if (baseUrl === undefined) {
  console.error("usage: node example.js BASE_URL [EMAIL] [PAYMENT_METHOD]");
  process.exit(1);
}
const email = emailArg ?? `ts-${randomUUID()}@example.com`;
const password = "correct-horse-9";

function die(what: string, error: ApiError | undefined, status: number): never {
  const e = error?.error;
  console.error(`example: ${what}: ${status} ${e?.status ?? ""}: ${e?.message ?? "no error body"}`);
  process.exit(1);
}

let accessToken: string | undefined;
const api = createPantheraClient({ baseUrl, accessToken: () => accessToken });

const registered = await api.POST("/v1/auth/register", {
  body: { email, password, firstName: "Type", lastName: "Script" },
});
if (registered.error !== undefined && registered.response.status !== 409) {
  die("register", registered.error, registered.response.status);
}

const login = await api.POST("/v1/auth/login", { body: { email, password } });
if (login.data === undefined) die("login", login.error, login.response.status);
accessToken = login.data.accessToken;

const me = await api.GET("/v1/users/me");
if (me.data === undefined) die("me", me.error, me.response.status);
console.log(`user ${me.data.id}`);

const list = await api.GET("/v1/products", {
  params: { query: { pageSize: 50, sortBy: "name" } },
});
if (list.data === undefined) die("list products", list.error, list.response.status);
console.log(`products ${list.data.total}`);
const product = list.data.products?.find((p) => (p.stock ?? 0) > 0);
if (product?.id === undefined) {
  console.error("example: no product in stock");
  process.exit(1);
}
console.log(`product ${product.id} ${product.name}`);

const placed = await api.POST("/v1/orders", {
  params: { header: { "Idempotency-Key": randomUUID() } },
  body: {
    items: [{ productId: product.id, quantity: 1 }],
    shippingAddress: { street: "1 Main St", city: "Springfield", zipCode: "12345", country: "US" },
    paymentMethodId: paymentArg ?? "pm_card_visa",
  },
});
if (placed.data?.id === undefined) die("place an order", placed.error, placed.response.status);
const orderId = placed.data.id;
console.log(`order ${orderId} placed`);

const until = Date.now() + 30_000;
for (;;) {
  const read = await api.GET("/v1/orders/{orderId}", { params: { path: { orderId } } });
  if (read.data === undefined) die("read the order", read.error, read.response.status);
  const order = read.data;
  if (order.status !== "PENDING_PAYMENT") {
    console.log(`order ${order.id} ${order.status} total ${order.totalAmount} ${order.currency}`);
    for (const item of order.items ?? []) {
      console.log(`item ${item.name} ${item.quantity} x ${item.unitPrice} = ${item.lineTotal}`);
    }
    process.exit(order.status === "PAID" ? 0 : 2);
  }
  if (Date.now() > until) {
    console.error("example: the order is still PENDING_PAYMENT after 30 s");
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}
