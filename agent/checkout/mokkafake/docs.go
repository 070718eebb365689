package mokkafake

// DocsCheckoutRequest is the Checkout request example of the Mokka Online
// API guide (the seed's), as the docs print it, but for callback_url (the
// caller's) and valid_till (moved from 2018 to 2030 so the order is not
// born expired): amounts as JSON numbers with one decimal, valid_till as
// dd.mm.yyyy hh:mm:ss+hh:mm, a key with a trailing space ("surname "), and
// the customer's personal data in person, delivery_info and client. Tests
// of the gateway and of the agent send it as a tablet would.
func DocsCheckoutRequest(callbackURL string) string {
	return `{
"terms_url": "https://mokka.ro/landings/demostore/",
"callback_url": "` + callbackURL + `",
"checkout_url": "https://shop.example.com/revo/checkout",
"redirect_url": "https://shop.example.com/revo/redirect",
"authorized_client": true,
"primary_phone": "654456546",
"primary_email": "john.connor@gmail.com",
"skip_result_page": true,
"current_order":
{
"order_id": "120R",
"amount": 51000.0,
"tax_amount": 0.0,
"discount_amount": 0.0,
"prepayment_amount": 1000.0,
"valid_till": "21.07.2030 12:08:01+03:00"
},
"person":
{
"first_name": "John",
"surname": "Connor",
"patronymic": "",
"birth_date": "15.01.1975"
},
"cart_items":
[{
"SKU": "441R",
"name": "Samsung Note 8",
"price": 48000.0,
"tax_price": 0.0,
"quantity": 1,
"quantity_unit": "pcs",
"category": "Phone"
},
{
"SKU": "530C",
"name": "Phone cover",
"price": 3000.0,
"tax_price": 0.0,
"quantity": 1,
"quantity_unit": "pcs",
"category": "Accessories"
}],
"delivery_info":
{
"first_name": "Sarah",
"surname": "Connor",
"patronymic": "",
"phone": "654456546",
"email": "sarah.connor@gmail.com",
"type": "Pickpoint",
"address": "McKinley street 1"
},
"additional_data":
{
"previous_url": "https://revo.ru/where-to-buy",
"returning_customer": true,
"bank_card": true,
"last_orders": 2,
"sum_orders": 61000.0,
"same_address": true
},
"client":
{
"first_name": "John",
"surname ": "Connor",
"patronymic": "",
"phone": "654456546",
"email": "john.connor@gmail.com",
"client_id": "654456546",
"registration_date": "11.11.2021",
"data_change_date": "15.11.2021",
"purchases_value": 2,
"purchases_sum": 61000.0,
"first_purchase_date": "11.11.2021",
"last_purchase_date": "11.11.2021",
"uniq_user_phone": "1"
},
"purchase":
[{
"product_name": "Selphone Xiaomi mi 8",
"number": 1,
"product_price": 10000.0
}]
}`
}
