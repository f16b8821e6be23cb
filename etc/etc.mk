# etc/etc.mk: sample configuration, campaigns, templates, data, man page.
heraldconfdir = $(sysconfdir)/herald
dist_heraldconf_DATA = etc/herald.ini
heraldcampaignsdir = $(heraldconfdir)/campaigns
dist_heraldcampaigns_DATA = etc/campaigns/welcome.ini etc/campaigns/winback.ini \
	etc/campaigns/cart.ini
samplesdir = $(pkgdatadir)/samples
dist_samples_DATA = etc/customers.jsonl etc/events.jsonl
tmplwelcomedir = $(pkgdatadir)/templates/welcome
dist_tmplwelcome_DATA = \
	templates/welcome/email.subject.liquid templates/welcome/email.text.liquid \
	templates/welcome/email.html.liquid templates/welcome/sms.body.liquid \
	templates/welcome/push.title.liquid templates/welcome/push.body.liquid \
	templates/welcome/push.data.liquid templates/welcome/webhook.body.liquid
tmplwelcomebdir = $(pkgdatadir)/templates/welcome-b
dist_tmplwelcomeb_DATA = templates/welcome-b/email.subject.liquid
tmplwinbackdir = $(pkgdatadir)/templates/winback
dist_tmplwinback_DATA = \
	templates/winback/email.subject.liquid templates/winback/email.text.liquid \
	templates/winback/email.html.liquid templates/winback/sms.body.liquid \
	templates/winback/push.title.liquid templates/winback/push.body.liquid
tmplcartdir = $(pkgdatadir)/templates/cart
dist_tmplcart_DATA = \
	templates/cart/email.subject.liquid templates/cart/email.text.liquid \
	templates/cart/email.html.liquid templates/cart/sms.body.liquid
tmplcart2dir = $(pkgdatadir)/templates/cart-2
dist_tmplcart2_DATA = templates/cart-2/email.subject.liquid \
	templates/cart-2/sms.body.liquid
tmplpartialsdir = $(pkgdatadir)/templates/_partials
dist_tmplpartials_DATA = templates/_partials/footer.liquid \
	templates/_partials/footer_html.liquid
dist_man_MANS = man/herald.1 plugins/email/herald-email.5
EXTRA_DIST += scripts/gen-customers.py scripts/install-deps.sh scripts/quickstart.sh \
	scripts/demo-engagement.py

# The samples work from where they are installed: the campaigns' templates
# from $(pkgdatadir), the gateway's store and outbox under
# $(localstatedir)/lib/herald (the checkout's relative paths would point
# into etc/ once installed).
install-data-hook: install-samples-paths
install-samples-paths:
	for f in $(dist_heraldcampaigns_DATA); do \
	  sed -i -e 's|^\(templates *= *\)\.\./\.\./templates/|\1$(pkgdatadir)/templates/|' \
	    "$(DESTDIR)$(heraldcampaignsdir)/$$(basename $$f)" || exit 1; \
	done
	sed -i -e 's|^\(path *= *\)\.\./var/|\1$(localstatedir)/lib/herald/|' \
	  -e 's|^\(dir *= *\)\.\./var/|\1$(localstatedir)/lib/herald/|' \
	  "$(DESTDIR)$(heraldconfdir)/herald.ini"
.PHONY: install-samples-paths
