/*
 * seed.c - the demo catalog of "Panthera Outfitters", an invented outdoor
 * shop, loaded into an empty catalog by `make run` (see catalog.h). The
 * rows go through the store's functions, so they obey the same
 * constraints and publish the same ProductChanged events as products
 * created over RPC; the stock goes to inventory through its channel.
 */
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "panthera/events/v1/events.pb-c.h"
#include "panthera/ids.h"
#include "panthera/inventory/v1/inventory.panthera.h"
#include "panthera/log.h"
#include "store.h"

#define SEED_INVENTORY_TIMEOUT_MS 5000u
#define SEED_NO_PARENT            (-1)

typedef struct seed_category {
	const char *name;
	const char *description;
	int parent; /* index into seed_categories, or SEED_NO_PARENT */
} seed_category;

enum { CAMPING, TENTS, KITCHEN, HIKING, APPAREL, SEED_N_CATEGORIES };

static const seed_category seed_categories[SEED_N_CATEGORIES] = {
    [CAMPING] = {"Camping", "Everything for a night outdoors: shelter, sleep and the camp kitchen.",
                 SEED_NO_PARENT},
    [TENTS] = {"Tents & Shelters",
               "Tents, tarps and bivy sacks, from solo trekking to family "
               "basecamp.",
               CAMPING},
    [KITCHEN] = {"Camp Kitchen", "Stoves, cook sets and water treatment for the backcountry.",
                 CAMPING},
    [HIKING] = {"Hiking",
                "Packs, poles, navigation and the small things that make a long day "
                "easy.",
                SEED_NO_PARENT},
    [APPAREL] = {"Apparel", "Layers for wind, rain and cold, from base layer to shell.",
                 SEED_NO_PARENT},
};

typedef struct seed_product {
	const char *sku;
	const char *name;
	const char *description;
	const char *price; /* USD */
	int category;      /* index into seed_categories */
	int stock;
} seed_product;

static const seed_product seed_products[] = {
    {"PO-TNT-001", "Ridgeline 2 Backpacking Tent",
     "A freestanding two-person tent at 1.6 kg, with two doors, two vestibules and a waterproof "
     "fly rated to 3000 mm.",
     "329.00", TENTS, 24},
    {"PO-TNT-002", "Basecamp 4 Family Tent",
     "Tall four-person dome with a large porch, a blackout bedroom and colour-coded poles that "
     "go up in ten minutes.",
     "449.00", TENTS, 12},
    {"PO-TNT-003", "Featherlite Solo Tent",
     "Single-wall trekking-pole shelter for one: 890 g packed, pitched in under three minutes.",
     "259.00", TENTS, 8},
    {"PO-TNT-004", "Canopy Tarp 3x3",
     "Ripstop silnylon tarp with 16 tie-outs, for a rain shelter over camp or a minimalist "
     "bivouac.",
     "89.50", TENTS, 40},
    {"PO-TNT-005", "Alpine Bivy Sack",
     "Waterproof, breathable bivy with a mesh face panel, for summit nights and emergencies.",
     "159.00", TENTS, 0},
    {"PO-TNT-006", "Tent Footprint for the Ridgeline 2",
     "Cut-to-fit groundsheet that protects the tent floor from rock and root.", "39.95", TENTS, 30},
    {"PO-SLP-001", "Summit Down Sleeping Bag -7°C",
     "800-fill responsibly sourced down mummy bag, comfortable to -7 °C, that packs to the size "
     "of a loaf of bread.",
     "389.00", CAMPING, 15},
    {"PO-SLP-002", "Trailhead Synthetic Sleeping Bag 4°C",
     "Warm even when damp: a roomy synthetic bag for summer and the shoulder seasons.", "119.00",
     CAMPING, 35},
    {"PO-SLP-003", "Insulated Air Pad",
     "Seven centimetres of air with an R-value of 4.2 and a quiet fabric; inflates in twelve "
     "breaths with the pump sack.",
     "149.00", CAMPING, 22},
    {"PO-SLP-004", "Closed-Cell Foam Pad",
     "An indestructible accordion pad: a sit pad by day, an under-layer by night.", "44.95",
     CAMPING, 50},
    {"PO-SLP-005", "Camp Pillow",
     "Inflatable pillow with a brushed cover that packs smaller than a fist.", "29.00", CAMPING,
     60},
    {"PO-KIT-001", "Titan Canister Stove",
     "Ultralight 78 g stove that boils a litre of water in three and a half minutes; piezo "
     "ignition.",
     "64.95", KITCHEN, 45},
    {"PO-KIT-002", "Trail Cook Set for Two",
     "Hard-anodized aluminium pot, pan and two mugs that nest around a 230 g fuel canister.",
     "79.00", KITCHEN, 28},
    {"PO-KIT-003", "Titanium Spork",
     "One utensil, 18 g, long enough to reach the bottom of a freeze-dried meal bag.", "12.50",
     KITCHEN, 120},
    {"PO-KIT-004", "Gravity Water Filter 4L",
     "Hang it from a branch and let gravity filter four litres of stream water in minutes; "
     "removes bacteria and protozoa.",
     "99.00", KITCHEN, 18},
    {"PO-KIT-005", "Insulated Camp Mug",
     "Double-wall stainless steel mug with a sliding lid: coffee stays hot through the sunrise.",
     "24.95", KITCHEN, 75},
    {"PO-KIT-006", "Fuel Canister 230 g",
     "Isobutane and propane mix for cold mornings; fits every threaded canister stove.", "7.99",
     KITCHEN, 200},
    {"PO-HIK-001", "Trailblazer 45 Backpack",
     "A 45-litre pack with an adjustable back system, hip-belt pockets and a removable rain "
     "cover.",
     "189.00", HIKING, 20},
    {"PO-HIK-002", "Daytripper 22 Daypack",
     "Light 22-litre daypack with a ventilated back panel and a hydration sleeve.", "79.95", HIKING,
     40},
    {"PO-HIK-003", "Carbon Trekking Poles, Pair",
     "Three-section carbon poles with cork grips and flick locks: 440 g the pair.", "139.00",
     HIKING, 16},
    {"PO-HIK-004", "Headlamp 400",
     "Rechargeable 400-lumen headlamp with a red night mode and a lock-out for the pack.", "49.00",
     HIKING, 55},
    {"PO-HIK-005", "Baseplate Compass",
     "Liquid-filled compass with declination adjustment and a magnifier for map reading.", "34.50",
     HIKING, 3},
    {"PO-HIK-006", "Trail First-Aid Kit",
     "Blister care, bandages, tape and a tick tool in a bright waterproof pouch.", "29.95", HIKING,
     42},
    {"PO-HIK-007", "Hydration Bladder 2L",
     "BPA-free reservoir with a wide opening for cleaning and a bite valve that shuts off.",
     "34.00", HIKING, 0},
    {"PO-APP-001", "Stormfront Rain Jacket",
     "Three-layer waterproof, breathable shell with pit zips and a helmet-compatible hood.",
     "249.00", APPAREL, 26},
    {"PO-APP-002", "Ember Down Jacket",
     "A warm 700-fill down jacket that packs into its own chest pocket.", "219.00", APPAREL, 19},
    {"PO-APP-003", "Merino Base Layer Top",
     "Soft 200 g/m² merino wool long-sleeve that stays fresh for days on the trail.", "85.00",
     APPAREL, 38},
    {"PO-APP-004", "Trail Softshell Pants",
     "Stretch softshell trousers that shed wind and light rain, with a zipped thigh pocket.",
     "119.00", APPAREL, 27},
    {"PO-APP-005", "Hiking Socks, Two Pairs",
     "Cushioned merino-blend socks with a seamless toe, for long days in boots.", "26.00", APPAREL,
     90},
    {"PO-APP-006", "Fleece Beanie", "A warm fleece beanie thin enough to wear under a hood.",
     "19.95", APPAREL, 64},
    {"PO-APP-007", "Waterproof Hiking Boots",
     "Leather mid boots with a waterproof membrane and a grippy lugged sole.", "199.00", APPAREL,
     14},
};

#define SEED_N_PRODUCTS (sizeof(seed_products) / sizeof(seed_products[0]))

typedef struct seed_op {
	catalog_service *svc;
	int created;
} seed_op;

/* The category's id: the existing one of that name (an admin may have made
 * it), or a new one. Parents come first in seed_categories. */
static rpc_status seed_category_id(db_conn *c, const seed_category *cat, const char *parent_id,
                                   char id[ID_UUID_LEN + 1])
{
	rpc_status st = catalog_store_find_category(c, cat->name, id);
	if (st != RPC_STATUS_NOT_FOUND)
		return st;
	if ((st = id_uuid4(id)) != RPC_STATUS_OK)
		return st;
	PGresult *r;
	st = catalog_store_insert_category(c, id, cat->name, cat->description, parent_id, &r);
	PQclear(r);
	return st;
}

static rpc_status seed_stock(catalog_service *svc, const char *product_id, int stock)
{
	if (svc->inventory == NULL)
		return RPC_STATUS_OK;
	Panthera__Inventory__V1__SetStockRequest req =
	    PANTHERA__INVENTORY__V1__SET_STOCK_REQUEST__INIT;
	req.product_id = (char *)product_id;
	req.available = stock;
	rpc_call_opts o = {.timeout_ms = SEED_INVENTORY_TIMEOUT_MS, .max_retries = 1};
	rpc_reply *reply = NULL;
	rpc_status st = panthera_inventory_v1_inventory_service_init_stock(svc->inventory, &req, &o,
	                                                                   NULL, &reply);
	if (st != RPC_STATUS_OK)
		log_write(LOG_WARN, NULL, "catalog.seed", "InitStock failed: %s: %s",
		          rpc_status_name(st), rpc_reply_message(reply));
	rpc_reply_free(reply);
	return st;
}

static rpc_status tx_seed(db_conn *c, void *arg)
{
	seed_op *op = arg;
	op->created = 0;
	rpc_status st = catalog_store_lock_seed(c);
	int64_t existing;
	if (st == RPC_STATUS_OK)
		st = catalog_store_count_products(c, &existing);
	if (st != RPC_STATUS_OK || existing > 0)
		return st;
	char cat_ids[SEED_N_CATEGORIES][ID_UUID_LEN + 1];
	for (int i = 0; i < SEED_N_CATEGORIES && st == RPC_STATUS_OK; i++) {
		const seed_category *cat = &seed_categories[i];
		const char *parent = cat->parent == SEED_NO_PARENT ? NULL : cat_ids[cat->parent];
		st = seed_category_id(c, cat, parent, cat_ids[i]);
	}
	for (size_t i = 0; i < SEED_N_PRODUCTS && st == RPC_STATUS_OK; i++) {
		const seed_product *p = &seed_products[i];
		char id[ID_UUID_LEN + 1], image[128];
		if ((st = id_uuid4(id)) != RPC_STATUS_OK)
			break;
		snprintf(image, sizeof(image), "https://images.panthera.example/products/%s.jpg",
		         p->sku);
		catalog_product_fields f = {.sku = p->sku,
		                            .name = p->name,
		                            .description = p->description,
		                            .price = p->price,
		                            .currency = "USD",
		                            .category_id = cat_ids[p->category],
		                            .image_url = image};
		PGresult *r;
		st = catalog_store_insert_product(c, id, &f, &r);
		PQclear(r);
		if (st == RPC_STATUS_OK)
			st = catalog_store_product_changed(
			    c, id, PANTHERA__EVENTS__V1__PRODUCT_CHANGED__KIND__CREATED);
		if (st == RPC_STATUS_OK)
			st = seed_stock(op->svc, id, p->stock);
		if (st == RPC_STATUS_OK)
			op->created++;
	}
	return st;
}

rpc_status catalog_seed_demo(catalog_service *svc, int *created)
{
	if (created != NULL)
		*created = 0;
	if (svc == NULL || svc->pool == NULL)
		return RPC_STATUS_INVALID_ARGUMENT;
	seed_op op = {.svc = svc};
	rpc_status st = db_transaction(svc->pool, 0, 30000, tx_seed, &op);
	if (st != RPC_STATUS_OK) {
		log_write(LOG_WARN, NULL, "catalog.seed", "demo catalog not loaded: %s",
		          rpc_status_name(st));
		return st;
	}
	if (op.created > 0)
		log_write(LOG_INFO, NULL, "catalog.seed", "loaded the demo catalog: %d products",
		          op.created);
	if (created != NULL)
		*created = op.created;
	return RPC_STATUS_OK;
}
